//! Draws the arena: walls, a coloured circle and a name per player, the
//! camera following your own player. Your player is drawn where prediction
//! says; everyone else interpolated between received frames.

use std::collections::{HashMap, HashSet};

use arena_shared::protocol::PlayerId;
use arena_shared::sim::{ARENA_HEIGHT, ARENA_WIDTH, PLAYER_RADIUS};
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::prelude::*;
use bevy::render::view::Msaa;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::Game;
use super::now_secs;

// Tuning, in world units and seconds.
const WALL_THICKNESS: f32 = 10.0;
const NAME_OFFSET: f32 = PLAYER_RADIUS as f32 + 14.0;
const NAME_FONT_PX: f32 = 14.0;
/// How fast the camera catches up with your player, per second.
const CAMERA_FOLLOW_RATE: f32 = 6.0;

pub struct RenderPlugin;

impl Plugin for RenderPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Drawn>()
            .add_systems(Startup, setup_scene)
            .add_systems(Update, (sync_player_entities, label_players, place_players, follow_camera).chain());
    }
}

/// Where each player was drawn this frame, in world units (x right, y
/// down): what the HUD's test snapshot reports.
#[derive(Resource, Default)]
pub struct Drawn(pub HashMap<PlayerId, (f32, f32)>);

#[derive(Component)]
struct PlayerDot {
    id: PlayerId,
}

/// A player's name tag, a child of its dot.
#[derive(Component)]
struct NameTag {
    id: PlayerId,
}

#[derive(Resource)]
struct PlayerMesh(Handle<Mesh>);

/// The name tag's text: the name, marked for you and for a player whose
/// connection dropped (its seat is held while it reconnects).
fn tag_text(name: &str, is_you: bool, away: bool) -> String {
    match (is_you, away) {
        (true, _) => format!("{name} (you)"),
        (false, true) => format!("{name} (reconnecting…)"),
        (false, false) => name.to_owned(),
    }
}

/// World units (origin top-left, y down) to scene coordinates (origin at the
/// arena's centre, y up).
pub fn world_to_scene(x: f32, y: f32) -> Vec2 {
    Vec2::new(x - ARENA_WIDTH as f32 / 2.0, ARENA_HEIGHT as f32 / 2.0 - y)
}

/// A colour per player id, spread around the hue circle.
pub fn player_color(id: PlayerId) -> Color {
    Color::hsl((f32::from(id) * 137.508) % 360.0, 0.7, 0.58)
}

/// Keeps name tags in step with names and who is away.
fn label_players(game: Res<Game>, mut tags: Query<(&NameTag, &mut Text2d)>) {
    if !game.is_changed() {
        return;
    }
    for (tag, mut text) in &mut tags {
        let Some(name) = game.names.get(&tag.id) else { continue };
        let wanted = tag_text(name, game.you == Some(tag.id), game.away.contains(&tag.id));
        if text.0 != wanted {
            text.0 = wanted;
        }
    }
}

fn setup_scene(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    // Flat colours need neither tonemapping nor MSAA, and on WebGL2 (worse,
    // software WebGL2) both cost whole extra passes per frame.
    commands.spawn((Camera2d, Msaa::Off, Tonemapping::None));
    let (w, h) = (ARENA_WIDTH as f32, ARENA_HEIGHT as f32);
    commands.spawn((
        Mesh2d(meshes.add(Rectangle::new(w, h))),
        MeshMaterial2d(materials.add(Color::srgb(0.11, 0.13, 0.17))),
        Transform::from_xyz(0.0, 0.0, -2.0),
    ));
    let wall = materials.add(Color::srgb(0.55, 0.6, 0.7));
    let t = WALL_THICKNESS;
    for (size, at) in [
        (Vec2::new(w + 2.0 * t, t), Vec2::new(0.0, (h + t) / 2.0)),
        (Vec2::new(w + 2.0 * t, t), Vec2::new(0.0, -(h + t) / 2.0)),
        (Vec2::new(t, h), Vec2::new((w + t) / 2.0, 0.0)),
        (Vec2::new(t, h), Vec2::new(-(w + t) / 2.0, 0.0)),
    ] {
        commands.spawn((
            Mesh2d(meshes.add(Rectangle::new(size.x, size.y))),
            MeshMaterial2d(wall.clone()),
            Transform::from_translation(at.extend(-1.0)),
        ));
    }
    commands.insert_resource(PlayerMesh(meshes.add(Circle::new(PLAYER_RADIUS as f32))));
}

/// One entity per player in the roster: spawned on join, despawned on leave.
fn sync_player_entities(
    mut commands: Commands,
    game: Res<Game>,
    mesh: Res<PlayerMesh>,
    mut materials: ResMut<Assets<ColorMaterial>>,
    dots: Query<(Entity, &PlayerDot)>,
) {
    let mut wanted: HashSet<PlayerId> = game.names.keys().copied().collect();
    wanted.extend(game.you);
    for (entity, dot) in &dots {
        if !wanted.remove(&dot.id) {
            commands.entity(entity).despawn();
        }
    }
    for id in wanted {
        let name = game.names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
        let is_you = game.you == Some(id);
        commands
            .spawn((
                PlayerDot { id },
                Mesh2d(mesh.0.clone()),
                MeshMaterial2d(materials.add(player_color(id))),
                Transform::from_xyz(0.0, 0.0, if is_you { 1.0 } else { 0.5 }),
                Visibility::Hidden,
            ))
            .with_children(|dot| {
                dot.spawn((
                    NameTag { id },
                    Text2d::new(tag_text(&name, is_you, game.away.contains(&id))),
                    TextFont { font_size: NAME_FONT_PX.into(), ..default() },
                    TextColor(Color::srgb(0.92, 0.94, 0.97)),
                    Transform::from_xyz(0.0, NAME_OFFSET, 0.1),
                ));
            });
    }
}

fn place_players(
    game: Res<Game>,
    mut drawn: ResMut<Drawn>,
    mut dots: Query<(&PlayerDot, &mut Transform, &mut Visibility)>,
) {
    drawn.0.clear();
    if let Some(render_tick) = game.clock.as_ref().and_then(|clock| clock.render_tick(now_secs())) {
        drawn.0.extend(game.interpolator.sample(render_tick));
    }
    if let Some(you) = game.you
        && game.prediction.is_anchored()
    {
        drawn.0.insert(you, game.prediction.body().pos.to_units());
    }
    for (dot, mut transform, mut visibility) in &mut dots {
        match drawn.0.get(&dot.id) {
            Some(&(x, y)) => {
                transform.translation = world_to_scene(x, y).extend(transform.translation.z);
                *visibility = Visibility::Visible;
            }
            None => *visibility = Visibility::Hidden,
        }
    }
}

fn follow_camera(
    time: Res<Time>,
    game: Res<Game>,
    drawn: Res<Drawn>,
    mut camera: Query<&mut Transform, With<Camera2d>>,
) {
    let Some(&(x, y)) = game.you.and_then(|you| drawn.0.get(&you)) else { return };
    let Ok(mut camera) = camera.single_mut() else { return };
    let target = world_to_scene(x, y).extend(camera.translation.z);
    let follow = (CAMERA_FOLLOW_RATE * time.delta_secs()).min(1.0);
    camera.translation = camera.translation.lerp(target, follow);
}

//! Draws the game: the platform over the void with its edge, one circle
//! per player (spawned and despawned from [`SessionChange`] messages; the
//! page writes the names, [`super::names`]),
//! a trail behind fast movers, a flash when someone is bumped, the fall,
//! and a camera easing after your player. You are drawn where prediction
//! says; everyone else interpolated between received frames.

use std::collections::HashMap;

use arena_shared::game::FALL_MS;
use arena_shared::protocol::{Life, PALETTE, PlayerId};
use arena_shared::sim::PLAYER_RADIUS;
use bevy::camera::{Projection, ScalingMode};
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::prelude::*;
use bevy::render::view::Msaa;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::{Session, SessionChange};
use super::page::{canvas_css_size, now_secs};
use super::screen::{ArenaSet, Screen};
use super::sound::Cues;
use arena_client_core::session::Change;

// Tuning, in world units and seconds.
/// How fast the camera catches up with your player, per second.
const CAMERA_FOLLOW_RATE: f32 = 5.0;
/// The camera shows this many world units across the window's shorter
/// side on a big screen...
const MIN_VIEW_UNITS: f32 = 720.0;
/// ...and on a smaller one a unit per pixel of that side, down to this: a
/// player (40 units) is 40 px across on a 390 px-wide phone rather than 22,
/// and the platform's edge shows once you are near it (the camera follows
/// you; the server's view covers far more than a phone shows).
const PHONE_VIEW_UNITS: f32 = 360.0;
const EDGE_WIDTH: f32 = 8.0;
/// Sides of the platform's polygon: round at any zoom.
const PLATFORM_SIDES: u32 = 160;
/// Faster than this leaves a trail, units/s.
const TRAIL_SPEED: f32 = 480.0;
const TRAIL_SECS: f32 = 0.22;
/// A change of velocity this sudden is a bump, units/s.
const BUMP_FLASH_DV: f32 = 420.0;
const FLASH_SECS: f32 = 0.18;

pub struct RenderPlugin;

impl Plugin for RenderPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Drawn>()
            .init_resource::<ViewScale>()
            .add_systems(Startup, setup)
            .add_systems(OnEnter(Screen::Playing), spawn_platform)
            .add_systems(OnExit(Screen::Playing), despawn_all::<PlatformPart>)
            .add_systems(
                Update,
                (
                    spawn_and_despawn_players,
                    place_players,
                    trails_and_flashes,
                    fade,
                    follow_camera,
                    frame_for_screen,
                )
                    .chain()
                    .in_set(ArenaSet::Render),
            );
    }
}

/// Where each player was drawn this frame, in world units (x right, y
/// down): what the HUD's test snapshot reports.
#[derive(Resource, Default)]
pub struct Drawn(pub HashMap<PlayerId, (f32, f32)>);

/// CSS pixels per world unit the camera draws at (the test snapshot says it).
#[derive(Resource, Default)]
pub struct ViewScale(pub f32);

#[derive(Component)]
struct PlayerDot {
    id: PlayerId,
    /// Last frame's drawn position and velocity, for trails and flashes.
    last: Option<((f32, f32), (f32, f32))>,
    last_trail: f64,
    /// Local time the fall started.
    falling_since: Option<f64>,
}

/// The ring drawn around a protected (just respawned) player.
#[derive(Component)]
struct ProtectionRing;

#[derive(Component)]
struct PlatformPart;

/// Shrinks (a trail ghost) or grows (a flash) and then goes away.
#[derive(Component)]
struct Fade {
    born: f64,
    secs: f32,
    from: f32,
    to: f32,
}

#[derive(Resource)]
struct Assets2d {
    circle: Handle<Mesh>,
    ring: Handle<Mesh>,
    colors: Vec<Handle<ColorMaterial>>,
    white: Handle<ColorMaterial>,
}

/// World units (origin at the platform's centre, y down) to scene
/// coordinates (y up).
pub fn world_to_scene(x: f32, y: f32) -> Vec2 {
    Vec2::new(x, -y)
}

fn palette(index: u8) -> Color {
    let rgb = PALETTE[usize::from(index) % PALETTE.len()];
    Color::srgb_u8((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8)
}

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    // Flat colours need neither tonemapping nor MSAA, and on WebGL2 (worse,
    // software WebGL2) both cost whole extra passes per frame. The
    // projection keeps world units square whatever the window's aspect.
    commands.spawn((
        Camera2d,
        Msaa::Off,
        Tonemapping::None,
        Projection::Orthographic(OrthographicProjection {
            scaling_mode: ScalingMode::AutoMin { min_width: MIN_VIEW_UNITS, min_height: MIN_VIEW_UNITS },
            ..OrthographicProjection::default_2d()
        }),
    ));
    let r = PLAYER_RADIUS as f32;
    commands.insert_resource(Assets2d {
        circle: meshes.add(Circle::new(r)),
        ring: meshes.add(Annulus::new(r + 3.0, r + 7.0)),
        colors: (0..PALETTE.len() as u8).map(|i| materials.add(palette(i))).collect(),
        white: materials.add(Color::srgb(0.95, 0.97, 1.0)),
    });
}

/// The platform: a disc with a bright edge over the dark void.
fn spawn_platform(
    mut commands: Commands,
    session: Res<Session>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    let Some(playing) = session.room() else { return };
    let radius = playing.platform().radius as f32;
    commands.spawn((
        PlatformPart,
        Mesh2d(meshes.add(Annulus::new(radius, radius + EDGE_WIDTH).mesh().resolution(PLATFORM_SIDES))),
        MeshMaterial2d(materials.add(Color::srgb(0.95, 0.55, 0.25))),
        Transform::from_xyz(0.0, 0.0, -1.0),
    ));
    commands.spawn((
        PlatformPart,
        Mesh2d(meshes.add(Circle::new(radius).mesh().resolution(PLATFORM_SIDES))),
        MeshMaterial2d(materials.add(Color::srgb(0.13, 0.15, 0.2))),
        Transform::from_xyz(0.0, 0.0, -2.0),
    ));
    commands.spawn((
        PlatformPart,
        Mesh2d(meshes.add(Circle::new(radius * 0.3).mesh().resolution(PLATFORM_SIDES / 2))),
        MeshMaterial2d(materials.add(Color::srgb(0.15, 0.17, 0.23))),
        Transform::from_xyz(0.0, 0.0, -1.5),
    ));
}

fn despawn_all<T: Component>(mut commands: Commands, parts: Query<Entity, With<T>>) {
    for entity in &parts {
        commands.entity(entity).despawn();
    }
}

/// One entity per player: spawned on join, despawned on leave.
fn spawn_and_despawn_players(
    mut commands: Commands,
    mut changes: MessageReader<SessionChange>,
    session: Res<Session>,
    assets: Res<Assets2d>,
    dots: Query<(Entity, &PlayerDot)>,
) {
    for SessionChange(change) in changes.read() {
        match change {
            Change::Joined(id) => {
                let Some(member) = session.room().and_then(|s| s.roster().get(id).map(|m| (s.you(), m)))
                else {
                    continue;
                };
                let (you, member) = member;
                let is_you = you == *id;
                commands
                    .spawn((
                        PlayerDot { id: *id, last: None, last_trail: 0.0, falling_since: None },
                        Mesh2d(assets.circle.clone()),
                        MeshMaterial2d(assets.colors[usize::from(member.color) % PALETTE.len()].clone()),
                        Transform::from_xyz(0.0, 0.0, if is_you { 1.0 } else { 0.5 }),
                        Visibility::Hidden,
                    ))
                    .with_children(|dot| {
                        dot.spawn((
                            ProtectionRing,
                            Mesh2d(assets.ring.clone()),
                            MeshMaterial2d(assets.white.clone()),
                            Transform::from_xyz(0.0, 0.0, -0.05),
                        ));
                    });
            }
            Change::Left(id) => {
                for (entity, dot) in &dots {
                    if dot.id == *id {
                        commands.entity(entity).despawn();
                    }
                }
            }
            _ => {}
        }
    }
}

fn place_players(
    mut session: ResMut<Session>,
    mut drawn: ResMut<Drawn>,
    mut dots: Query<(&mut PlayerDot, &mut Transform, &mut Visibility, &Children)>,
    mut rings: Query<&mut Visibility, (With<ProtectionRing>, Without<PlayerDot>)>,
) {
    drawn.0.clear();
    let Some(session) = session.0.as_mut() else { return };
    let now = now_secs();
    session.advance_playout(now);
    let Some(playing) = session.room() else { return };
    drawn.0.extend(playing.positions(now));
    for (mut dot, mut transform, mut visibility, children) in &mut dots {
        let life = playing.roster().get(&dot.id).map_or(Life::Out, |m| m.life);
        // A fall shrinks the player into the void.
        let scale = match life {
            Life::Falling => {
                let since = *dot.falling_since.get_or_insert(now);
                (1.0 - ((now - since) as f32 * 1000.0 / FALL_MS as f32)).clamp(0.05, 1.0)
            }
            _ => {
                dot.falling_since = None;
                1.0
            }
        };
        match drawn.0.get(&dot.id) {
            Some(&(x, y)) if life != Life::Out => {
                transform.translation = world_to_scene(x, y).extend(transform.translation.z);
                transform.scale = Vec3::splat(scale);
                *visibility = Visibility::Visible;
            }
            _ => *visibility = Visibility::Hidden,
        }
        for child in children.iter() {
            if let Ok(mut ring) = rings.get_mut(child) {
                *ring = if life == Life::Protected { Visibility::Inherited } else { Visibility::Hidden };
            }
        }
    }
}

/// Ghosts behind fast movers; a white flash behind a player whose velocity
/// jumped (a bump, or a dash), and the bump's sound when it touched
/// someone.
fn trails_and_flashes(
    mut commands: Commands,
    time: Res<Time>,
    session: Res<Session>,
    drawn: Res<Drawn>,
    assets: Res<Assets2d>,
    mut dots: Query<(&mut PlayerDot, &MeshMaterial2d<ColorMaterial>)>,
    mut cues: ResMut<Cues>,
) {
    let Some(playing) = session.room() else { return };
    let dt = time.delta_secs();
    if dt <= 0.0 {
        return;
    }
    let now = now_secs();
    for (mut dot, material) in &mut dots {
        let standing =
            playing.roster().get(&dot.id).is_some_and(|m| matches!(m.life, Life::Alive | Life::Protected));
        let Some(&pos) = drawn.0.get(&dot.id).filter(|_| standing) else {
            dot.last = None;
            continue;
        };
        let vel = dot.last.map_or((0.0, 0.0), |(last, _)| ((pos.0 - last.0) / dt, (pos.1 - last.1) / dt));
        let speed = (vel.0 * vel.0 + vel.1 * vel.1).sqrt();
        if let Some((_, last_vel)) = dot.last {
            let dv = ((vel.0 - last_vel.0).powi(2) + (vel.1 - last_vel.1).powi(2)).sqrt();
            if dv > BUMP_FLASH_DV && speed < 3000.0 {
                if touching(&drawn, dot.id, pos) {
                    let you = drawn.0.get(&playing.you()).copied().unwrap_or(pos);
                    cues.bump(dv, ((pos.0 - you.0).powi(2) + (pos.1 - you.1).powi(2)).sqrt());
                }
                commands.spawn((
                    Mesh2d(assets.circle.clone()),
                    MeshMaterial2d(assets.white.clone()),
                    Transform::from_translation(world_to_scene(pos.0, pos.1).extend(0.3)),
                    Fade { born: now, secs: FLASH_SECS, from: 1.05, to: 1.45 },
                ));
            }
        }
        if speed > TRAIL_SPEED && now - dot.last_trail > 1.0 / 40.0 {
            dot.last_trail = now;
            commands.spawn((
                Mesh2d(assets.circle.clone()),
                MeshMaterial2d(material.0.clone()),
                Transform::from_translation(world_to_scene(pos.0, pos.1).extend(0.2)),
                Fade { born: now, secs: TRAIL_SECS, from: 0.8, to: 0.1 },
            ));
        }
        dot.last = Some((pos, vel));
    }
}

/// Whether another drawn player touches (or all but touches) player `id`
/// at `pos`: a jump in speed there is a bump, not a dash.
fn touching(drawn: &Drawn, id: PlayerId, pos: (f32, f32)) -> bool {
    let reach = (2 * PLAYER_RADIUS) as f32 + 8.0;
    drawn
        .0
        .iter()
        .any(|(&other, at)| other != id && (at.0 - pos.0).powi(2) + (at.1 - pos.1).powi(2) < reach * reach)
}

fn fade(mut commands: Commands, mut faders: Query<(Entity, &Fade, &mut Transform)>) {
    let now = now_secs();
    for (entity, fade, mut transform) in &mut faders {
        let t = ((now - fade.born) as f32 / fade.secs).clamp(0.0, 1.0);
        if t >= 1.0 {
            commands.entity(entity).despawn();
        } else {
            transform.scale = Vec3::splat(fade.from + (fade.to - fade.from) * t);
        }
    }
}

/// World units across a window's shorter side of `shorter_px` CSS pixels.
fn view_units(shorter_px: f32) -> f32 {
    shorter_px.clamp(PHONE_VIEW_UNITS, MIN_VIEW_UNITS)
}

/// Scene coordinates to where they are on the page, in CSS pixels from the
/// canvas's top left, through the camera's own projection: right at any
/// device pixel ratio.
pub fn scene_to_css(camera: &Camera, at: &GlobalTransform, scene: Vec2) -> Option<Vec2> {
    let (width, height) = canvas_css_size()?;
    let ndc = camera.world_to_ndc(at, scene.extend(0.0))?;
    Some(Vec2::new((ndc.x + 1.0) / 2.0 * width, (1.0 - ndc.y) / 2.0 * height))
}

/// A point on the page (CSS pixels from the canvas's top left) to scene
/// coordinates: [`scene_to_css`] backwards.
pub fn css_to_scene(camera: &Camera, at: &GlobalTransform, css: Vec2) -> Option<Vec2> {
    let (width, height) = canvas_css_size()?;
    let ndc = Vec3::new(css.x / width * 2.0 - 1.0, 1.0 - css.y / height * 2.0, 0.0);
    camera.ndc_to_world(at, ndc).map(|scene| scene.truncate())
}

/// Zooms the camera for the page's size in CSS pixels (a phone turned, a
/// window resized), so every pixel ratio sees the same world for the same
/// page, and says the resulting scale.
fn frame_for_screen(mut cameras: Query<&mut Projection, With<Camera2d>>, mut scale: ResMut<ViewScale>) {
    let Some((width, height)) = canvas_css_size() else { return };
    let shorter = width.min(height);
    let Ok(mut projection) = cameras.single_mut() else { return };
    if shorter <= 0.0 {
        return;
    }
    let units = view_units(shorter);
    if let Projection::Orthographic(ortho) = projection.as_mut() {
        let current =
            matches!(ortho.scaling_mode, ScalingMode::AutoMin { min_width, .. } if min_width == units);
        if !current {
            ortho.scaling_mode = ScalingMode::AutoMin { min_width: units, min_height: units };
        }
    }
    scale.0 = shorter / units;
}

fn follow_camera(
    time: Res<Time>,
    session: Res<Session>,
    drawn: Res<Drawn>,
    mut camera: Query<&mut Transform, With<Camera2d>>,
) {
    let Some(playing) = session.room() else { return };
    let Ok(mut camera) = camera.single_mut() else { return };
    // While you are off the platform and on the podium it follows whoever
    // knocked you out (`Room::camera_on`); with nobody drawn to follow, it
    // drifts back to the middle.
    let (x, y) = drawn.0.get(&playing.camera_on()).copied().unwrap_or((0.0, 0.0));
    let target = world_to_scene(x, y).extend(camera.translation.z);
    let follow = (CAMERA_FOLLOW_RATE * time.delta_secs()).min(1.0);
    camera.translation = camera.translation.lerp(target, follow);
}

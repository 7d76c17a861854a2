//! Players' names, written by the page rather than drawn by Bevy: one
//! `<span>` per player in `#names` over the canvas, moved every frame to
//! the point above its player. The browser already has fonts, shaping and
//! crisp small text at any zoom; Bevy's text renderer (parley, swash and a
//! bundled font) was a fifth of the wasm.
//!
//! Names are user input: they only ever reach the page as text.

use std::collections::HashMap;

use arena_shared::protocol::{Life, PlayerId};
use arena_shared::sim::PLAYER_RADIUS;
use bevy::prelude::*;
use web_sys::Element;

use super::net::Session;
use super::render::{Drawn, scene_to_css, world_to_scene};
use super::screen::ArenaSet;

/// How far above its player's centre a name sits, in world units.
const NAME_OFFSET: f32 = PLAYER_RADIUS as f32 + 6.0;

pub struct NamesPlugin;

impl Plugin for NamesPlugin {
    fn build(&self, app: &mut App) {
        app.insert_non_send(NameTags::default()).add_systems(Update, place_names.in_set(ArenaSet::Hud));
    }
}

/// The page's name tags, by player. DOM handles live on the main thread
/// only, hence a non-send resource.
#[derive(Default)]
struct NameTags {
    layer: Option<Element>,
    tags: HashMap<PlayerId, Tag>,
}

struct Tag {
    element: Element,
    text: String,
    shown: bool,
    /// Where it was put last, in whole CSS pixels.
    at: (i32, i32),
}

impl NameTags {
    fn layer(&mut self) -> Option<&Element> {
        if self.layer.is_none() {
            self.layer = web_sys::window()?.document()?.get_element_by_id("names");
        }
        self.layer.as_ref()
    }

    fn tag(&mut self, id: PlayerId) -> Option<&mut Tag> {
        if !self.tags.contains_key(&id) {
            let layer = self.layer()?;
            let element = layer.owner_document()?.create_element("span").ok()?;
            element.set_attribute("hidden", "").ok()?;
            layer.append_child(&element).ok()?;
            self.tags.insert(id, Tag { element, text: String::new(), shown: false, at: (i32::MIN, 0) });
        }
        self.tags.get_mut(&id)
    }

    /// Drops the tags of players for whom `keep` says no.
    fn retain(&mut self, mut keep: impl FnMut(PlayerId) -> bool) {
        self.tags.retain(|&id, tag| {
            let kept = keep(id);
            if !kept {
                tag.element.remove();
            }
            kept
        });
    }
}

impl Tag {
    fn show(&mut self, shown: bool) {
        if self.shown != shown {
            self.shown = shown;
            let _ = if shown {
                self.element.remove_attribute("hidden")
            } else {
                self.element.set_attribute("hidden", "")
            };
        }
    }

    fn write(&mut self, text: String) {
        if self.text != text {
            self.element.set_text_content(Some(&text));
            self.text = text;
        }
    }

    fn put(&mut self, at: (i32, i32)) {
        if self.at != at {
            self.at = at;
            let style = format!("transform:translate({}px,{}px) translate(-50%,-100%)", at.0, at.1);
            let _ = self.element.set_attribute("style", &style);
        }
    }
}

/// The name tag's text: marked for you and for a player whose connection
/// dropped (its seat is held while it reconnects).
fn tag_text(name: &str, is_you: bool, away: bool) -> String {
    match (is_you, away) {
        (true, _) => format!("{name} (you)"),
        (false, true) => format!("{name} (reconnecting…)"),
        (false, false) => name.to_owned(),
    }
}

/// One tag per player in the room, over its circle while it stands on the
/// platform; none outside a room.
fn place_names(
    mut tags: NonSendMut<NameTags>,
    session: Res<Session>,
    drawn: Res<Drawn>,
    camera: Query<(&Camera, &Transform), With<Camera2d>>,
) {
    let Some(playing) = session.room() else {
        tags.retain(|_| false);
        return;
    };
    let roster = playing.roster();
    tags.retain(|id| roster.contains_key(&id));
    let Ok((camera, transform)) = camera.single() else { return };
    let camera_at = GlobalTransform::from(*transform);
    for (&id, member) in roster {
        let Some(tag) = tags.tag(id) else { return };
        tag.write(tag_text(&member.name, playing.you() == id, member.away));
        let standing = matches!(member.life, Life::Alive | Life::Protected);
        let above = drawn
            .0
            .get(&id)
            .filter(|_| standing)
            .and_then(|&(x, y)| scene_to_css(camera, &camera_at, world_to_scene(x, y - NAME_OFFSET)));
        if let Some(point) = above {
            tag.put((point.x.round() as i32, point.y.round() as i32));
        }
        tag.show(above.is_some());
    }
}

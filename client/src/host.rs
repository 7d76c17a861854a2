//! The host's panel of a private room (in the menu; the header's Host
//! button opens it): the rules for the next rounds, the lock, "start the
//! next round now", and each player with Kick and To watchers. The page's
//! script queues the host's choices on `data-host-commands`; each frame they
//! go to the session as [`HostCommand`]s, and the server's answer comes
//! back as the room's hosting (or a refusal, shown under the panel). The
//! podium's "Watch this round" link is kept here too.

use arena_shared::protocol::{PlayerId, Rules, replay_id_hex};
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;
use wasm_bindgen::JsCast;

use super::net::Session;
use super::page::{body_attr, set_body_attr};
use super::screen::{ArenaSet, Screen};
use arena_client_core::controls::host_command;

/// How long a refusal stays under the panel.
const REFUSAL_SECS: f64 = 6.0;

pub struct HostPlugin;

impl Plugin for HostPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Shown>().add_systems(
            Update,
            (send_host_commands.in_set(ArenaSet::Network), show_host_panel.in_set(ArenaSet::Hud))
                .run_if(in_state(Screen::Playing)),
        );
    }
}

/// What the panel shows now, so the page is touched only on a change.
#[derive(Resource, Default, PartialEq)]
struct Shown {
    host: bool,
    rules: Option<Rules>,
    locked: bool,
    /// Each player's id and name, in id order, and the host's id.
    players: Vec<(PlayerId, String)>,
    notice: String,
    replay: Option<String>,
    /// "hosted by …" under the invite link.
    host_name: String,
}

/// The host's queued choices (`data-host-commands`), to the session.
fn send_host_commands(mut session: ResMut<Session>) {
    let Some(queued) = body_attr("data-host-commands").filter(|q| !q.is_empty()) else { return };
    set_body_attr("data-host-commands", "");
    let Some(playing) = session.0.as_mut() else { return };
    for command in queued.split_whitespace().filter_map(host_command) {
        playing.host(command);
    }
}

fn show_host_panel(session: Res<Session>, mut shown: ResMut<Shown>) {
    let Some(room) = session.room() else { return };
    let now = super::page::now_secs();
    let hosting = room.hosting();
    let host = room.is_host() && room.is_private();
    let notice = room
        .refused()
        .filter(|&(_, at)| now - at < REFUSAL_SECS)
        .map_or_else(String::new, |(refusal, _)| refusal.message());
    let replay = room.replay().map(replay_id_hex);
    let players = room
        .roster()
        .iter()
        .filter(|&(&id, _)| id != room.you())
        .map(|(&id, member)| (id, member.name.clone()))
        .collect();
    let host_name = match room.roster().get(&hosting.host) {
        _ if host => "You host this room".to_owned(),
        Some(member) if room.is_private() => format!("Hosted by {}", member.name),
        _ => String::new(),
    };
    let now_shown = Shown {
        host,
        rules: Some(hosting.rules),
        locked: hosting.locked,
        players,
        notice,
        replay,
        host_name,
    };
    if *shown == now_shown {
        return;
    }
    set_body_attr("data-host", if host { "1" } else { "0" });
    if shown.rules != now_shown.rules || shown.locked != now_shown.locked {
        show_rules(hosting.rules, hosting.locked);
    }
    if shown.players != now_shown.players {
        list_players(&now_shown.players);
    }
    if let Some(notice) = element("host-notice") {
        notice.set_text_content(Some(&now_shown.notice));
    }
    if let Some(name) = element("host-name") {
        name.set_text_content(Some(&now_shown.host_name));
    }
    if shown.replay != now_shown.replay {
        show_replay_link(now_shown.replay.as_deref());
    }
    *shown = now_shown;
}

fn element(id: &str) -> Option<web_sys::Element> {
    web_sys::window()?.document()?.get_element_by_id(id)
}

/// The selects and the lock box say what the server says is set.
fn show_rules(rules: Rules, locked: bool) {
    // A value the panel does not offer (`--round-secs 45`, say) gets its
    // own option, so the panel never shows another than the one set.
    let select = |id: &str, value: u16, label: String| {
        let Some(select) = element(id).and_then(|e| e.dyn_into::<web_sys::HtmlSelectElement>().ok()) else {
            return;
        };
        let value = value.to_string();
        select.set_value(&value);
        if select.value() != value
            && let Some(option) = web_sys::window().and_then(|w| w.document()?.create_element("option").ok())
        {
            let _ = option.set_attribute("value", &value);
            option.set_text_content(Some(&label));
            let _ = select.append_child(&option);
            select.set_value(&value);
        }
    };
    select("host-round", rules.round_secs, format!("{} s", rules.round_secs));
    select("host-points", rules.points_to_win, rules.points_to_win.to_string());
    if let Some(lock) = element("host-lock").and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok()) {
        lock.set_checked(locked);
    }
}

/// One line per other player: its name (as text: names are user input),
/// then To watchers and Kick.
fn list_players(players: &[(PlayerId, String)]) {
    let Some(list) = element("host-players") else { return };
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    list.set_text_content(None);
    for (id, name) in players {
        let Ok(line) = document.create_element("li") else { return };
        if let Ok(label) = document.create_element("span") {
            label.set_text_content(Some(name));
            let _ = line.append_child(&label);
        }
        for (act, text) in [("watch", "To watchers"), ("kick", "Kick")] {
            if let Ok(button) = document.create_element("button") {
                let _ = button.set_attribute("type", "button");
                let _ = button.set_attribute("data-act", act);
                let _ = button.set_attribute("data-id", &id.to_string());
                let _ = button.set_attribute("aria-label", &format!("{text}: {name}"));
                button.set_text_content(Some(text));
                let _ = line.append_child(&button);
            }
        }
        let _ = list.append_child(&line);
    }
}

/// The podium's link to the round just recorded (`/replay/<id>`).
fn show_replay_link(replay: Option<&str>) {
    set_body_attr("data-replay-ready", if replay.is_some() { "1" } else { "0" });
    let (Some(id), Some(link)) = (replay, element("replay-link")) else { return };
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let _ = link.set_attribute("href", &format!("{origin}/replay/{id}"));
}

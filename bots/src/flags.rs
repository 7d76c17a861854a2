//! What both command lines, `arena-bots` and `arena-attack`, read the same
//! way, each a clap `value_parser` with a message that says what was
//! expected.

/// `--url`: the server's WebSocket URL, `ws://` or `wss://` with a host.
pub fn websocket_url(value: &str) -> Result<String, String> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host().is_some() => Ok(value.to_owned()),
        _ => Err(format!("'{value}' is not a WebSocket URL; expected ws://host:port/ws")),
    }
}

/// `--duration` and the like: seconds, more than 0 and at most a day.
pub fn seconds(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!("'{value}' is not a duration; expected seconds between 0 and 86400")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_url_needs_its_scheme_and_a_host() {
        for good in ["ws://127.0.0.1:7777/ws", "wss://arena.example/ws", "ws://[::1]:7777/ws"] {
            assert_eq!(websocket_url(good).as_deref(), Ok(good));
        }
        for bad in ["http://x/ws", "ws://", "127.0.0.1:7777", "wss://", "file:///ws"] {
            let refused = websocket_url(bad).expect_err(bad);
            assert!(refused.contains("not a WebSocket URL"), "{refused}");
        }
    }

    #[test]
    fn seconds_are_more_than_none_and_at_most_a_day() {
        assert_eq!(seconds("0.5"), Ok(0.5));
        assert_eq!(seconds("86400"), Ok(86_400.0));
        for bad in ["0", "-3", "86401", "NaN", "soon"] {
            assert!(seconds(bad).expect_err(bad).contains("not a duration"));
        }
    }
}

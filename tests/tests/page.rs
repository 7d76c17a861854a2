//! The page and the protocol agree on what they both name.

use std::path::Path;

#[test]
fn the_join_screen_offers_the_protocols_palette() {
    let index = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/index.html");
    let page = std::fs::read_to_string(index).expect("web/index.html");
    for (index, rgb) in arena_shared::protocol::PALETTE.iter().enumerate() {
        let button = format!("data-color=\"{index}\" style=\"background:#{rgb:06x}\"");
        assert!(page.contains(&button), "the join screen's colour {index} should be #{rgb:06x}");
    }
    assert!(
        !page.contains(&format!("data-color=\"{}\"", arena_shared::protocol::PALETTE.len())),
        "no more colours"
    );
}

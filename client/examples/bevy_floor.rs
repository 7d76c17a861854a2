//! The smallest Bevy app with arena's Bevy features: a camera and one
//! circle, nothing of arena's. Built with the browser's size profile, it
//! is the floor under the game's wasm (README, "The browser build"):
//!
//! ```sh
//! cargo build --example bevy_floor -p arena-client --target wasm32-unknown-unknown --profile wasm-release
//! wasm-bindgen --target web --out-dir target/floor target/wasm32-unknown-unknown/wasm-release/examples/bevy_floor.wasm
//! brotli -q 11 -c target/floor/bevy_floor_bg.wasm | wc -c
//! ```

#[cfg(target_arch = "wasm32")]
fn main() {
    use bevy::prelude::*;

    App::new()
        .add_plugins(DefaultPlugins)
        .add_systems(
            Startup,
            |mut commands: Commands,
             mut meshes: ResMut<Assets<Mesh>>,
             mut materials: ResMut<Assets<ColorMaterial>>| {
                commands.spawn(Camera2d);
                commands.spawn((
                    Mesh2d(meshes.add(Circle::new(20.0))),
                    MeshMaterial2d(materials.add(Color::srgb(1.0, 0.4, 0.4))),
                ));
            },
        )
        .run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("bevy_floor is a wasm32 example: build it with --target wasm32-unknown-unknown");
}

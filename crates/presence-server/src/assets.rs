//! The demo page and the browser SDK, embedded in the binary so a fresh
//! `cargo run --release` serves them with no other step.

use rust_embed::RustEmbed;

/// `demo/`: `index.html` at `/`, the rest at `/demo/…`.
#[derive(RustEmbed)]
#[folder = "../../demo/"]
pub struct Demo;

/// `clients/js/src/`: the SDK's ES modules at `/sdk/…`.
#[derive(RustEmbed)]
#[folder = "../../clients/js/src/"]
#[exclude = "*.test.*"]
pub struct Sdk;

/// The `Content-Type` for a file name.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

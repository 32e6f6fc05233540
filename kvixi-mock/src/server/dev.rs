//! `/_mock/*`: the emulator's own development endpoints (state dump, generated pictures).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use html_escape::encode_text;

use super::Shared;
use crate::StateSnapshot;

/// `GET /_mock/state`: apps (with secrets), live auth_keys, tokens and users.
pub(crate) async fn state(State(shared): State<Arc<Shared>>) -> Json<StateSnapshot> {
    let now = shared.now();
    Json(shared.registry().snapshot(shared.base_url(), now))
}

/// Query of `POST /_mock/clock`.
#[derive(serde::Deserialize)]
pub(crate) struct AdvanceClock {
    advance: u64,
}

/// `POST /_mock/clock?advance=SECS`: moves the emulator's clock forward, for tests that
/// drive a separate process (the library call is [`crate::Emulator::advance_clock`]).
pub(crate) async fn advance_clock(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<AdvanceClock>,
) -> StatusCode {
    shared
        .clock()
        .advance(std::time::Duration::from_secs(query.advance));
    StatusCode::NO_CONTENT
}

/// `GET /_mock/avatar/{name}.svg`: a round avatar with the name's initial.
pub(crate) async fn avatar(Path(file): Path<String>) -> Response {
    picture(&file, |initial, color| {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128"><circle cx="64" cy="64" r="64" fill="{color}"/><text x="64" y="64" dy=".35em" text-anchor="middle" font-family="sans-serif" font-size="64" font-weight="700" fill="#fff">{initial}</text></svg>"##
        )
    })
}

/// `GET /_mock/cover/{name}.svg`: a wide banner in the name's colour.
pub(crate) async fn cover(Path(file): Path<String>) -> Response {
    picture(&file, |initial, color| {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="320" viewBox="0 0 960 320"><rect width="960" height="320" fill="{color}"/><circle cx="820" cy="60" r="180" fill="#fff" fill-opacity=".12"/><text x="40" y="280" font-family="sans-serif" font-size="96" font-weight="700" fill="#fff" fill-opacity=".6">{initial}</text></svg>"##
        )
    })
}

/// Answers `draw(initial, colour)` for `{name}.svg`, 404 for any other file name.
fn picture(file: &str, draw: impl Fn(&str, &str) -> String) -> Response {
    let Some(name) = file.strip_suffix(".svg").filter(|name| !name.is_empty()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let initial: String = name.chars().take(1).flat_map(char::to_uppercase).collect();
    let color = color_of(name);
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        draw(&encode_text(&initial), &color),
    )
        .into_response()
}

/// A stable, readable background colour for `name`.
fn color_of(name: &str) -> String {
    const PALETTE: [&str; 6] = [
        "#5b3cc4", "#d0456b", "#2e8b57", "#d9822b", "#2f6fdb", "#7a5230",
    ];
    let hash = name.bytes().fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    });
    PALETTE[hash % PALETTE.len()].to_owned()
}

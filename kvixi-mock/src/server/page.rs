//! The HTML pages of `/api/oauth`: the login-and-consent form and error pages.
//!
//! Element ids (`user_name`, `password`, `allow`, `deny`, `error`) are stable: browser tests
//! drive the page through them.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#eef1f7;color:#1d2433}\
main{width:100%;max-width:380px;margin:16px;padding:32px;background:#fff;border-radius:14px;\
box-shadow:0 8px 30px rgba(29,36,51,.12)}\
.brand{margin:0 0 4px;font-size:28px;font-weight:800;color:#5b3cc4;letter-spacing:-.5px}\
h1{margin:0 0 16px;font-size:18px;font-weight:600}\
.app{font-family:ui-monospace,monospace;background:#f1edff;padding:1px 6px;border-radius:4px}\
label{display:block;margin:14px 0 4px;font-size:14px;font-weight:600}\
input{width:100%;padding:10px 12px;border:1px solid #c9cfdb;border-radius:8px;font:inherit}\
input:focus{outline:2px solid #5b3cc4;border-color:transparent}\
.actions{display:flex;gap:10px;margin-top:22px}\
button{flex:1;padding:10px;border:0;border-radius:8px;font:inherit;font-weight:600;cursor:pointer}\
#allow{background:#5b3cc4;color:#fff}#deny{background:#e6e8ee;color:#1d2433}\
.error{margin:0 0 12px;padding:10px 12px;border-radius:8px;background:#fdecec;color:#a11a1a}\
.note{margin:22px 0 0;font-size:12px;color:#6b7385;text-align:center}";

/// The login-and-consent page for `app_id`, with `user_name` prefilled and an optional error.
pub(crate) fn login(
    status: StatusCode,
    app_id: &str,
    user_name: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|message| {
            format!(
                r#"<p class="error" id="error" role="alert">{}</p>"#,
                text(message)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<p class="brand">Kvixi</p>
<h1>Log in to allow <span class="app" id="app_id">{app_text}</span> to access your profile</h1>
{error}<form method="post" action="/api/oauth">
<input type="hidden" name="app_id" value="{app_attr}">
<label for="user_name">User name</label>
<input id="user_name" name="user_name" autocomplete="username" autofocus value="{user_attr}">
<label for="password">Password</label>
<input id="password" type="password" name="password" autocomplete="current-password">
<div class="actions">
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" type="submit" name="decision" value="deny">Deny</button>
</div>
</form>
<p class="note">Kvixi emulator (kvixi-mock) &middot; test accounts only</p>"#,
        app_text = text(app_id),
        app_attr = attr(app_id),
        user_attr = attr(user_name),
    );
    document(status, "Log in with Kvixi", &body)
}

/// An error page: `title` as heading, `message` below.
pub(crate) fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        r#"<p class="brand">Kvixi</p>
<h1>{}</h1>
<p class="error" id="error">{}</p>
<p class="note">Kvixi emulator (kvixi-mock)</p>"#,
        text(title),
        text(message),
    );
    document(status, title, &body)
}

fn document(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"#,
        title = text(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn html(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn dynamic_text_is_escaped() {
        let page = html(login(
            StatusCode::OK,
            "<script>\"x\"",
            "\"><b>",
            Some("<i>wrong</i>"),
        ))
        .await;
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<i>wrong"));
        assert!(!page.contains("\"><b>"));
        assert!(page.contains("&lt;script&gt;"));
    }
}

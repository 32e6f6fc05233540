//! The HTML of the example pages, shared by every framework's example.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use kvixi_core::{Config, KvixiUser};

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}\
a.button,button{{display:inline-block;padding:.5rem 1rem;background:#3457d5;color:#fff;border:0;border-radius:.3rem;text-decoration:none;font-size:1rem;cursor:pointer}}\
img.avatar{{width:64px;height:64px;border-radius:50%;vertical-align:middle;margin-right:1rem}}\
dt{{font-weight:bold}} nav a{{margin-right:1rem}}</style></head>\
<body><nav><a href=\"/\">Home</a><a href=\"/private\">Private page</a><a href=\"/me\">/me (JSON)</a></nav>{body}</body></html>\n",
        title = text(title),
    )
}

fn logout_form(config: &Config) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><button id=\"logout\" type=\"submit\">Log out</button></form>",
        attr(config.logout_path())
    )
}

fn avatar(user: &KvixiUser) -> String {
    user.picture
        .as_deref()
        .map(|src| format!("<img class=\"avatar\" alt=\"\" src=\"{}\">", attr(src)))
        .unwrap_or_default()
}

/// `/`: a login button for visitors, the user's name, picture and a logout button otherwise.
pub fn home(config: &Config, user: Option<&KvixiUser>) -> String {
    let body = match user {
        Some(user) => format!(
            "<h1>{avatar}Hello, <span id=\"user-name\">{name}</span></h1>\
<p>You are logged in with Kvixi as <b>{handle}</b>.</p>{logout}",
            avatar = avatar(user),
            name = text(&user.display_name()),
            handle = text(user.name.as_deref().unwrap_or(&user.id)),
            logout = logout_form(config),
        ),
        None => format!(
            "<h1>kvixi-rs example</h1><p>You are not logged in.</p>\
<p><a class=\"button\" id=\"login\" href=\"{}?return_to=%2Fprivate\">Log in with Kvixi</a></p>",
            attr(config.login_path())
        ),
    };
    layout("kvixi-rs example", &body)
}

/// `/private`: the logged-in user's profile.
pub fn private(config: &Config, user: &KvixiUser) -> String {
    let mut rows = String::new();
    let mut row = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            rows.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>",
                text(label),
                text(&value)
            ));
        }
    };
    row("Kvixi id", Some(user.id.clone()));
    row("User name", user.name.clone());
    row("E-mail", user.email.clone());
    row("Born", user.birthdate.as_ref().map(ToString::to_string));
    row(
        "Verified",
        Some(if user.verified { "yes" } else { "no" }.to_owned()),
    );
    row("Biography", user.biography.clone());
    row("Website", user.website.clone());
    let body = format!(
        "<h1>{avatar}Private page of <span id=\"user-name\">{name}</span></h1><dl>{rows}</dl>{logout}",
        avatar = avatar(user),
        name = text(&user.display_name()),
        logout = logout_form(config),
    );
    layout("Private page", &body)
}

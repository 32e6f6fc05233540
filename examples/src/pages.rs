//! The HTML of the example pages, shared by every framework's example.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use kvixi_core::{Config, ErrorPage, KvixiBuilder, KvixiUser, Page};

/// The examples' own pages on the flow: their failure pages in the site's layout
/// ([`own_error_page`]), and their sign-in page for anonymous browsers ([`sign_in`], at
/// `/sign-in`, which every example routes), which links to the Kvixi login.
pub fn own_pages(builder: KvixiBuilder) -> KvixiBuilder {
    builder
        .page_renderer(own_error_page)
        .sign_in_page("/sign-in")
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}\
a.button,button{{display:inline-block;padding:.5rem 1rem;background:#3457d5;color:#fff;border:0;border-radius:.3rem;text-decoration:none;font-size:1rem;cursor:pointer}}\
img.avatar{{width:64px;height:64px;border-radius:50%;vertical-align:middle;margin-right:1rem}}\
dt{{font-weight:bold}} nav a{{margin-right:1rem}}</style></head>\
<body><nav><a href=\"/\">Home</a><a href=\"/private\">Private page</a><a href=\"/account\">Account</a><a href=\"/me\">/me (JSON)</a></nav>{body}</body></html>\n",
        title = text(title),
    )
}

fn logout_form(config: &Config) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><button id=\"logout\" type=\"submit\">Log out</button></form>",
        attr(config.logout_path())
    )
}

/// The login button, in a form that starts the login with `return_to` and, when the
/// box is ticked, "remember me" (`remember=1`: a cookie that outlives the browser).
fn login_form(config: &Config, return_to: Option<&str>) -> String {
    let hidden = return_to
        .map(|to| {
            format!(
                "<input type=\"hidden\" name=\"return_to\" value=\"{}\">",
                attr(to)
            )
        })
        .unwrap_or_default();
    format!(
        "<form method=\"get\" action=\"{}\" id=\"login-form\">{hidden}\
<p><label><input type=\"checkbox\" id=\"remember\" name=\"remember\" value=\"1\"> Keep me logged in on this device</label></p>\
<p><button class=\"button\" id=\"login\" type=\"submit\">Log in with Kvixi</button></p></form>",
        attr(config.login_path())
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
            "<h1>kvixi-rs example</h1><p>You are not logged in.</p>{}",
            login_form(config, Some("/private"))
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

/// `/account`: the page of the guarded group, built from the user the group guard
/// passed on (its handler takes no Kvixi extractor), with "your devices": each of the
/// user's sessions and a button that logs that device out.
pub fn account(
    config: &Config,
    user: &KvixiUser,
    devices: &[kvixi_core::devices::Device],
) -> String {
    let mut rows = String::new();
    for device in devices {
        let since = ago(device.logged_in_at);
        let seen = ago(device.last_seen);
        let current = if device.current { " (this device)" } else { "" };
        rows.push_str(&format!(
            "<li class=\"device\">{browser}{current}, logged in {since}, last seen {seen} \
<form method=\"post\" action=\"{end}\"><input type=\"hidden\" name=\"handle\" value=\"{handle}\">\
<input type=\"hidden\" name=\"return_to\" value=\"/account\">\
<button class=\"end-device\" type=\"submit\">Log out this device</button></form></li>",
            browser = text(&device.browser),
            end = attr(config.end_session_path()),
            handle = attr(&device.handle.to_string()),
        ));
    }
    let body = format!(
        "<h1>{avatar}Account of <span id=\"user-name\">{name}</span></h1>\
<p>Every page under <code>/account</code> is guarded by one line: the handlers never ask for a user.</p>\
<p><a href=\"/account/verified\">Verified members only</a></p>\
<h2 id=\"devices\">Your devices</h2><ul id=\"device-list\">{rows}</ul>\
<p><a id=\"delete-link\" href=\"/account/delete\">Delete my account</a></p>",
        avatar = avatar(user),
        name = text(&user.display_name()),
    );
    layout("Account", &body)
}

/// How long ago `at` was, roughly: "just now", "5 min ago", "3 h ago", "2 days ago".
fn ago(at: kvixi_core::UnixTime) -> String {
    let seconds = kvixi_core::UnixTime::now().0.saturating_sub(at.0);
    match seconds {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// How recent a login `/account/delete` asks for.
pub const DELETE_NEEDS_LOGIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// `/account/delete`: behind a recent-login guard (a login at most
/// [`DELETE_NEEDS_LOGIN_WITHIN`] old; an older one goes through login again and comes
/// back here). Its form posts to the same path.
pub fn delete_account(user: &KvixiUser) -> String {
    let body = format!(
        r#"<h1 id="delete-account">Delete my account</h1><p><span id="user-name">{}</span>, deleting your account ends every session of yours, on every device.</p>
<p>This page asks for a login made in the last five minutes: an older one goes through Kvixi again first.</p>
<form method="post" action="/account/delete"><button id="delete" type="submit">Delete my account</button></form>"#,
        text(&user.display_name()),
    );
    layout("Delete my account", &body)
}

/// `/account/verified`: only for accounts Kvixi marks as verified (a predicate on the
/// group guard; others get 403).
pub fn verified(user: &KvixiUser) -> String {
    let body = format!(
        "<h1>Verified members</h1><p><span id=\"user-name\">{}</span>, your Kvixi account is verified.</p>",
        text(&user.display_name()),
    );
    layout("Verified members", &body)
}

/// `/sign-in`: the app's own sign-in page, where anonymous browsers land (with
/// `return_to`) when the flow is built with `sign_in_page("/sign-in")`; its login form
/// starts the login with the same `return_to`, and "remember me" if ticked.
pub fn sign_in(config: &Config, query: Option<&str>) -> String {
    // The login route sanitizes it again: here it is only carried.
    let return_to = query.and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "return_to")
            .map(|(_, value)| value.into_owned())
    });
    let body = format!(
        "<h1 id=\"sign-in\">Sign in</h1><p>This page needs an account. We use Kvixi to know who you are.</p>{}",
        login_form(config, return_to.as_deref()),
    );
    layout("Sign in", &body)
}

/// The app's own failure pages, for
/// [`KvixiBuilder::page_renderer`](kvixi_core::KvixiBuilder::page_renderer): the
/// example's layout for browsers, the default JSON for API clients. The status and
/// headers stay the core's.
pub fn own_error_page(page: &ErrorPage<'_>) -> Option<Page> {
    if page.prefers_json {
        return None;
    }
    let heading = match (page.status, page.code) {
        (401, _) => "Please log in",
        (403, _) => "Not for this account",
        (400..=499, _) => "That login did not work",
        // The app's own store (its database, Redis) is down, not Kvixi.
        (_, "session_store_unavailable") => "Sessions are unavailable for a moment",
        _ => "Kvixi is having trouble",
    };
    let body = format!(
        "<h1 id=\"app-error-page\">{heading}</h1><p>{message}</p>\
<p><a class=\"button\" id=\"try-again\" href=\"{try_again}\">Try again</a></p>\
<p><small>{code} ({status})</small></p>",
        message = text(page.message),
        try_again = attr(page.try_again),
        code = text(page.code),
        status = page.status,
    );
    Some(Page::html(layout(heading, &body)))
}

#[cfg(test)]
mod tests {
    use kvixi_core::{Config, Error, Kvixi};

    /// The heading a browser reads for `error` on the example's own pages.
    fn heading(error: &Error) -> String {
        let config = Config::builder("app", "secret", "http://localhost:3000/auth/kvixi/callback")
            .build()
            .expect("valid config");
        let kvixi = Kvixi::builder(config)
            .page_renderer(super::own_error_page)
            .build()
            .expect("flow builds");
        let body = kvixi.failure(error, false).body;
        let start = body
            .find("<h1 id=\"app-error-page\">")
            .expect("the app's page")
            + 24;
        body[start..start + body[start..].find("</h1>").expect("a heading")].to_owned()
    }

    #[test]
    fn a_store_outage_is_not_blamed_on_kvixi() {
        let outage = Error::SessionStoreUnavailable {
            problem: "database: connection refused".into(),
        };
        assert_eq!(heading(&outage), "Sessions are unavailable for a moment");
        let busy = Error::ProviderBusy { retry_after: 1 };
        assert_eq!(heading(&busy), "Kvixi is having trouble");
    }
}

//! The app's own pages: a renderer for the flow's failure pages, and a "sign in" page of
//! the app's to send anonymous browsers to.
//!
//! The core keeps what matters for safety: the status, the headers (`no-store`,
//! `no-referrer`), the redirects and every check. A renderer only turns an outcome it is
//! told about ([`ErrorPage`]: a code, a status, a user-safe message, the "try again" URL)
//! into a body; it never receives a secret, an auth_key or Kvixi's own message, and it
//! cannot turn a failure into a success.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::driver::KvixiBuilder;
use crate::error::Error;
use crate::reply::Reply;

/// One outcome of the flow that answers with a page (or JSON): what a renderer set with
/// [`KvixiBuilder::page_renderer`] is told. It holds no secret, no auth_key and nothing
/// of Kvixi's own message; the status and headers of the answer stay the core's.
///
/// ```
/// use kvixi_core::{Config, ErrorPage, Kvixi, Page};
///
/// fn my_page(page: &ErrorPage<'_>) -> Option<Page> {
///     if page.prefers_json {
///         return None; // the default JSON answer
///     }
///     Some(Page::html(format!(
///         "<h1>Oops</h1><p>{}</p><a href=\"{}\">Try again</a>",
///         page.message, page.try_again
///     )))
/// }
///
/// let config = Config::builder("app-id", "app-secret", "https://app.example/auth/kvixi/callback")
///     .build()?;
/// let kvixi = Kvixi::builder(config)
///     .page_renderer(my_page)
///     .sign_in_page("/sign-in")
///     .build()?;
/// let reply = kvixi.anonymous_reply(false, "/account");
/// assert_eq!(reply.location.as_deref(), Some("/sign-in?return_to=%2Faccount"));
/// # Ok::<(), kvixi_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorPage<'a> {
    /// The error's stable code (`"no_pending_login"`, `"not_allowed"`, …).
    pub code: &'static str,
    /// The HTTP status the core answers with; the renderer cannot change it.
    pub status: u16,
    /// Whether the client asked for JSON rather than an HTML page.
    pub prefers_json: bool,
    /// The URL of the "try again" link: the login route.
    pub try_again: &'a str,
    /// What the end user may read (plain text: escape it in HTML).
    pub message: &'static str,
    /// Whether Kvixi is at fault (unreachable, slow, malformed) rather than the browser.
    pub provider_failure: bool,
}

impl<'a> ErrorPage<'a> {
    /// The outcome of `error`, as a renderer sees it.
    pub fn of(config: &'a Config, error: &Error, prefers_json: bool) -> ErrorPage<'a> {
        ErrorPage {
            code: error.code(),
            status: error.status(),
            prefers_json,
            try_again: config.login_path(),
            message: error.user_message(),
            provider_failure: error.is_provider_failure(),
        }
    }
}

/// A body a renderer made, and its content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Page {
    /// An HTML page (`text/html; charset=utf-8`).
    pub fn html(body: impl Into<String>) -> Page {
        Page {
            content_type: "text/html; charset=utf-8",
            body: body.into(),
        }
    }

    /// A JSON body (`application/json`).
    pub fn json(body: impl Into<String>) -> Page {
        Page {
            content_type: "application/json",
            body: body.into(),
        }
    }
}

type Renderer = Arc<dyn Fn(&ErrorPage<'_>) -> Option<Page> + Send + Sync>;

/// The app's pages, as the builder received them.
#[derive(Clone, Default)]
pub(crate) struct Pages {
    renderer: Option<Renderer>,
    sign_in: Option<String>,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("renderer", &self.renderer.is_some())
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

impl Pages {
    /// Whether every answer is the default one (the fast paths can stay prebuilt).
    pub(crate) fn has_renderer(&self) -> bool {
        self.renderer.is_some()
    }

    /// The answer to `error`: the renderer's body when it made one, the default page
    /// otherwise; the status and headers are the core's either way.
    pub(crate) fn error_reply(&self, config: &Config, error: &Error, prefers_json: bool) -> Reply {
        let rendered = self
            .renderer
            .as_ref()
            .and_then(|render| render(&ErrorPage::of(config, error, prefers_json)));
        match rendered {
            Some(page) => Reply {
                status: error.status(),
                location: None,
                content_type: Some(page.content_type),
                body: page.body,
                set_cookie: None,
                retry_after: error.retry_after().map(|seconds| seconds.to_string()),
            },
            None => Reply::error(config, error, prefers_json),
        }
    }

    /// Where an anonymous browser goes instead of `login_location` (the login route with
    /// its `return_to`): the app's sign-in page with the same query, when there is one.
    pub(crate) fn sign_in_location(&self, config: &Config, login_location: String) -> String {
        match &self.sign_in {
            Some(sign_in) => sign_in_location(config, sign_in, &login_location),
            None => login_location,
        }
    }

    /// Checks the settings once, at build time.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        match &self.sign_in {
            Some(path) if !is_local_path(path) => Err(Error::Config {
                setting: "sign_in_page",
                problem: format!(
                    "{path:?} must be a path of this site starting with a single `/`, like /sign-in"
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// `login_location` (`{login_path}?return_to=…`) with the app's sign-in page in place of
/// the login route.
fn sign_in_location(config: &Config, sign_in: &str, login_location: &str) -> String {
    match login_location.strip_prefix(config.login_path()) {
        Some(query) => format!("{sign_in}{query}"),
        None => sign_in.to_owned(),
    }
}

fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains(['\\', '?', '#'])
        && !path.chars().any(char::is_control)
}

impl KvixiBuilder {
    /// Renders the flow's failure pages (and JSON errors) the app's way: `render` gets
    /// each outcome ([`ErrorPage`]) and returns a body and content type, or `None` for
    /// the default answer (say, to keep the default JSON). Status and headers stay the
    /// core's.
    pub fn page_renderer(
        mut self,
        render: impl Fn(&ErrorPage<'_>) -> Option<Page> + Send + Sync + 'static,
    ) -> Self {
        self.pages.renderer = Some(Arc::new(render));
        self
    }

    /// Sends anonymous browsers to the app's own sign-in page at `path` (which links to
    /// the login route) instead of straight to Kvixi; they arrive with the same
    /// `?return_to=` the login route would have received, for the page to pass on.
    /// JSON clients still get 401. `path` must be a path of this site (`build` checks).
    pub fn sign_in_page(mut self, path: impl Into<String>) -> Self {
        self.pages.sign_in = Some(path.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::builder("a", "s", "http://localhost/cb")
            .build()
            .expect("valid config")
    }

    fn own(page: &ErrorPage<'_>) -> Option<Page> {
        (!page.prefers_json).then(|| {
            Page::html(format!(
                "own {} {} {} {}",
                page.code, page.status, page.try_again, page.message
            ))
        })
    }

    #[test]
    fn a_renderer_chooses_the_body_and_the_core_the_status() {
        let pages = Pages {
            renderer: Some(Arc::new(own)),
            sign_in: None,
        };
        let error = Error::AuthKeyRejected {
            provider_message: "Bad Request, invalid auth_key SECRET-ish".into(),
        };
        let reply = pages.error_reply(&config(), &error, false);
        assert_eq!(reply.status, 400);
        assert!(
            reply
                .body
                .starts_with("own auth_key_rejected 400 /auth/kvixi/login")
        );
        assert!(
            !reply.body.contains("SECRET-ish"),
            "never the provider's text"
        );
        assert_eq!(
            reply.headers().find(|(name, _)| *name == "cache-control"),
            Some(("cache-control", "no-store"))
        );
        // `None`: the default answer.
        let json = pages.error_reply(&config(), &error, true);
        assert_eq!(json, Reply::error(&config(), &error, true));
    }

    #[test]
    fn without_a_renderer_the_pages_are_the_defaults() {
        let reply = Pages::default().error_reply(&config(), &Error::AccessDenied, false);
        assert_eq!(reply, Reply::error(&config(), &Error::AccessDenied, false));
    }

    #[test]
    fn sign_in_page_takes_the_login_routes_query() {
        let pages = Pages {
            renderer: None,
            sign_in: Some("/sign-in".into()),
        };
        let config = config();
        assert_eq!(
            pages.sign_in_location(&config, "/auth/kvixi/login?return_to=%2Fa".into()),
            "/sign-in?return_to=%2Fa"
        );
        assert_eq!(
            Pages::default().sign_in_location(&config, "/auth/kvixi/login?x".into()),
            "/auth/kvixi/login?x"
        );
    }

    #[test]
    fn sign_in_page_must_be_a_path_of_this_site() {
        for bad in ["https://evil.example/", "//evil.example", "sign-in", "/a?b"] {
            let pages = Pages {
                renderer: None,
                sign_in: Some(bad.into()),
            };
            assert!(pages.validate().is_err(), "{bad}");
        }
        let good = Pages {
            renderer: None,
            sign_in: Some("/sign-in".into()),
        };
        assert!(good.validate().is_ok());
    }
}

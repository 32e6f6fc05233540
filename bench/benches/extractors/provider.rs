//! The Kvixi emulator the sessions are logged in against, on a runtime of its own so that
//! it keeps answering whichever executor a framework's benchmark runs on.

use kvixi_core::{AppData, Config, Kvixi};
use kvixi_mock::{App, Emulator};

const APP_ID: &str = "bench-app";
const APP_SECRET: &str = "bench-secret";
const CALLBACK: &str = "http://127.0.0.1:3000/auth/kvixi/callback";

/// The running emulator with the bench app registered.
pub struct Provider {
    emulator: Emulator,
    // Serves the emulator; idle once the logins are done.
    _runtime: tokio::runtime::Runtime,
}

impl Provider {
    pub fn start() -> Provider {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the emulator");
        let emulator = runtime
            .block_on(
                Emulator::builder()
                    .app(App::new(APP_ID, APP_SECRET, CALLBACK))
                    .start("127.0.0.1:0"),
            )
            .expect("the emulator starts on loopback");
        Provider {
            emulator,
            _runtime: runtime,
        }
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// A new flow (with its own HTTP client) for one framework's app.
    pub fn kvixi(&self) -> Kvixi {
        let config = Config::builder(APP_ID, APP_SECRET, CALLBACK)
            .base_url(self.emulator.base_url())
            .build()
            .expect("a valid bench config");
        // Every login stores a typical app value (issue 14), and one user other than
        // alice is revoked, so that each read looks a stamp up.
        let kvixi = Kvixi::builder(config)
            .on_login(|_user, _token| async { Ok(AppData(crate::app_data::typical())) })
            .build()
            .expect("the flow builds");
        self._runtime
            .block_on(kvixi.revoke_user("revoked-elsewhere"))
            .expect("a memory revocation");
        kvixi
    }
}

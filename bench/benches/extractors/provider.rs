//! The Kvixi emulator the sessions are logged in against, on a runtime of its own so that
//! it keeps answering whichever executor a framework's benchmark runs on.

use kvixi_core::{AppData, Config, ConfigBuilder, Kvixi, KvixiBuilder, MemoryRevocations};
use kvixi_mock::{App, Emulator};

const APP_ID: &str = "bench-app";
const APP_SECRET: &str = "bench-secret";
const CALLBACK: &str = "http://127.0.0.1:3000/auth/kvixi/callback";
/// A user other than alice whose sessions are revoked.
const REVOKED_ELSEWHERE: &str = "revoked-elsewhere";

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

    /// A new flow (with its own HTTP client) for one framework's app, its sessions in a
    /// store of this process (so its revocations too, said explicitly: the adapters
    /// refuse a store they do not know as per-process without it).
    pub fn kvixi(&self) -> Kvixi {
        let config = self.config().build().expect("a valid bench config");
        let kvixi = self.flow(Kvixi::builder(config).revocations(MemoryRevocations::default()));
        self._runtime
            .block_on(kvixi.revoke_user(REVOKED_ELSEWHERE))
            .expect("a memory revocation");
        kvixi
    }

    /// A new flow whose config names the Redis at `url` (`KVIXI_REDIS_URL`), as every
    /// instance of a fleet has it: sessions, revocation stamps and spent logins go
    /// there, through the flow's own pool. Awaited on the runtime that serves the
    /// framework's app, so that the pool's connections are tasks of that runtime, as in
    /// an app built in its async main.
    pub async fn kvixi_on_redis(&self, url: &str) -> Kvixi {
        let config = self
            .config()
            .redis_url(url)
            .cookie_key([0x4b; 64])
            .build()
            .expect("a valid bench config with Redis");
        let kvixi = self.flow(Kvixi::builder(config));
        kvixi
            .redis_ready(std::time::Duration::from_secs(10))
            .await
            .expect("the bench's redis-server answers");
        kvixi
            .revoke_user(REVOKED_ELSEWHERE)
            .await
            .expect("a revocation stamp in Redis");
        kvixi
    }

    /// A new flow whose config names the database at `url` (`KVIXI_DATABASE_URL`):
    /// sessions, revocation stamps and spent logins there, through the flow's own pool.
    pub async fn kvixi_on_database(&self, url: &str) -> Kvixi {
        let config = self
            .config()
            .database_url(url)
            .cookie_key([0x4b; 64])
            .build()
            .expect("a valid bench config with a database");
        let kvixi = self.flow(Kvixi::builder(config));
        kvixi
            .database_ready(std::time::Duration::from_secs(10))
            .await
            .expect("the bench's database answers");
        kvixi
            .revoke_user(REVOKED_ELSEWHERE)
            .await
            .expect("a revocation stamp in the database");
        kvixi
    }

    /// Adds `user_name` (with a user id of its own) to the emulator's users.
    pub fn add_user(&self, user_id: &str, user_name: &str) {
        self.emulator
            .add_user(kvixi_mock::User::new(user_id, user_name, "bench-password"));
    }

    fn config(&self) -> ConfigBuilder {
        Config::builder(APP_ID, APP_SECRET, CALLBACK).base_url(self.emulator.base_url())
    }

    /// Every login stores a typical app value (issue 14), and one user other than alice
    /// is revoked (by the caller), so that each read looks a stamp up.
    fn flow(&self, builder: KvixiBuilder) -> Kvixi {
        builder
            .on_login(|_user, _token| async { Ok(AppData(crate::app_data::typical())) })
            .build()
            .expect("the flow builds")
    }
}

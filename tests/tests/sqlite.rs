//! The scenario lists a session store decides, with every app keeping its sessions,
//! revocations and spent logins in a SQLite file of its own (`KVIXI_DATABASE_URL`).

kvixi_e2e::store_scenarios!(kvixi_e2e::SuiteStore::Sqlite);

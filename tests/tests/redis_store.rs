//! The scenario lists a session store decides, with every app keeping its sessions,
//! revocations and spent logins in a Redis of its own, named by the one setting
//! (`KVIXI_REDIS_URL`).

kvixi_e2e::store_scenarios!(kvixi_e2e::SuiteStore::Redis);

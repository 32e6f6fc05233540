-- The example app's own users: one row per Kvixi user who ever logged in.
create table if not exists members (
    local_id integer primary key autoincrement,
    kvixi_id text not null unique,
    first_seen integer not null,
    logins integer not null
);

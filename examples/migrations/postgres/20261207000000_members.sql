-- The example app's own users: one row per Kvixi user who ever logged in.
create table if not exists members (
    local_id bigserial primary key,
    kvixi_id text not null unique,
    first_seen bigint not null,
    logins bigint not null
);

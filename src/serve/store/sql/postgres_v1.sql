/* pgopt's history store, schema version 1 (PostgreSQL, in the store's own schema, set as search_path) */
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE series (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target text NOT NULL,
    metric text NOT NULL,
    key text NOT NULL,
    UNIQUE (target, metric, key)
);
CREATE TABLE points (
    series bigint NOT NULL,
    at bigint NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (series, at)
);
CREATE TABLE rollup_5m (
    series bigint NOT NULL,
    at bigint NOT NULL,
    mean double precision NOT NULL,
    peak double precision NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (series, at)
);
CREATE TABLE rollup_1h (
    series bigint NOT NULL,
    at bigint NOT NULL,
    mean double precision NOT NULL,
    peak double precision NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (series, at)
);
CREATE TABLE rollup_state (
    id bigint PRIMARY KEY CHECK (id = 1),
    rolled_5m bigint,
    rolled_1h bigint,
    dirty_from bigint,
    raw_kept_from bigint,
    five_kept_from bigint,
    raw_retention_s bigint,
    five_retention_s bigint,
    hourly_retention_s bigint,
    maintained_at bigint
);
CREATE TABLE statements (
    target text NOT NULL,
    queryid bigint NOT NULL,
    text text NOT NULL,
    PRIMARY KEY (target, queryid)
);
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target text NOT NULL,
    at bigint NOT NULL,
    kind text NOT NULL,
    message text NOT NULL,
    details text NOT NULL
);
CREATE INDEX events_target_at ON events (target, at);
CREATE INDEX events_at ON events (at);

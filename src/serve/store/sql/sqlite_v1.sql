/* pgopt's history store, schema version 1 (SQLite): series interned once, points keyed by (series, at) */
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    metric TEXT NOT NULL,
    key TEXT NOT NULL,
    UNIQUE (target, metric, key)
);
CREATE TABLE points (
    series INTEGER NOT NULL,
    at INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series, at)
) WITHOUT ROWID;
CREATE TABLE rollup_5m (
    series INTEGER NOT NULL,
    at INTEGER NOT NULL,
    mean REAL NOT NULL,
    peak REAL NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (series, at)
) WITHOUT ROWID;
CREATE TABLE rollup_1h (
    series INTEGER NOT NULL,
    at INTEGER NOT NULL,
    mean REAL NOT NULL,
    peak REAL NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (series, at)
) WITHOUT ROWID;
CREATE TABLE rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_5m INTEGER,
    rolled_1h INTEGER,
    dirty_from INTEGER,
    raw_kept_from INTEGER,
    five_kept_from INTEGER,
    raw_retention_s INTEGER,
    five_retention_s INTEGER,
    hourly_retention_s INTEGER,
    maintained_at INTEGER
);
CREATE TABLE statements (
    target TEXT NOT NULL,
    queryid INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (target, queryid)
) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX events_target_at ON events (target, at);
CREATE INDEX events_at ON events (at);

//! (c) Cache hit ratio and database size against memory: shared_buffers, random_page_cost.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (c) cache hit ratio and database size against memory.
pub(super) fn cache(b: &mut Builder, mem_kb: u64, snap: &Snapshot, th: &Thresholds) {
    let db_bytes: i64 = snap
        .server
        .as_ref()
        .map(|s| s.database_sizes.iter().map(|d| d.size_bytes).sum())
        .unwrap_or(0);
    if db_bytes <= 0 {
        return;
    }
    let db_kb = db_bytes as u64 / 1024;
    let ecs_kb = b.get("effective_cache_size").and_then(kb);
    if let Some(ecs) = ecs_kb {
        if db_kb <= ecs && b.get("random_page_cost") != Some("1.1") {
            let reason = format!(
                "the databases ({} MB) fit in effective_cache_size ({}): reads come from \
                 memory, random reads cost about as much as sequential ones",
                db_kb / 1024,
                format_kb(ecs)
            );
            b.set(
                "cache",
                "random_page_cost",
                "1.1".into(),
                reason,
                ev(&[
                    ("database_bytes", json!(db_bytes)),
                    ("effective_cache_size_kb", json!(ecs)),
                ]),
            );
        }
    }
    let (hit, read) = snap
        .databases
        .iter()
        .fold((0i64, 0i64), |(h, r), d| (h + d.blks_hit, r + d.blks_read));
    if hit + read <= 0 {
        return;
    }
    let ratio = hit as f64 / (hit + read) as f64;
    let Some(sb_kb) = b.get("shared_buffers").and_then(kb) else {
        return;
    };
    if ratio >= th.tune_cache_hit_ratio || db_kb <= sb_kb {
        return;
    }
    let cap = (mem_kb as f64 * th.tune_shared_buffers_max_share) as u64;
    let target = round_kb(cap.min(db_kb));
    if target <= sb_kb {
        return;
    }
    let reason = format!(
        "cache hit ratio {:.2}% (< {}%) with {} MB of databases above shared_buffers {}: \
         raised to min({}% of memory, database size)",
        ratio * 100.0,
        percent(th.tune_cache_hit_ratio),
        db_kb / 1024,
        format_kb(sb_kb),
        percent(th.tune_shared_buffers_max_share)
    );
    b.set(
        "cache",
        "shared_buffers",
        format_kb(target),
        reason,
        ev(&[
            ("hit_ratio", json!((ratio * 10_000.0).round() / 10_000.0)),
            ("blks_hit", json!(hit)),
            ("blks_read", json!(read)),
            ("database_bytes", json!(db_bytes)),
            ("cap_kb", json!(cap)),
        ]),
    );
}

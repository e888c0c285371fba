//! (c2) Requested checkpoints: max_wal_size from the WAL rate.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (c2) requested checkpoints → max_wal_size.
///
/// A checkpoint is requested early once the WAL since the last one passes about
/// max_wal_size / (1 + checkpoint_completion_target). For checkpoints to come from
/// checkpoint_timeout instead, max_wal_size must hold the WAL of one timeout interval times
/// (1 + checkpoint_completion_target), with headroom. The WAL rate is pg_stat_wal's bytes over
/// its window; before 14, what the requested checkpoints imply (each after about
/// max_wal_size / (1 + checkpoint_completion_target) of WAL).
pub(super) fn checkpoints(b: &mut Builder, snap: &Snapshot, th: &Thresholds) {
    let Some(c) = &snap.checkpoints else {
        return;
    };
    let total = c.timed + c.requested;
    if c.requested < (th.tune_checkpoints_requested_min as i64)
        || (c.requested as f64) < th.tune_checkpoints_requested_ratio * total as f64
    {
        return;
    }
    let (Some(current_kb), Some(timeout_s)) = (
        snap_kb(snap, "max_wal_size"),
        snap.setting_f64("checkpoint_timeout"),
    ) else {
        return;
    };
    let target_ratio = snap
        .setting_f64("checkpoint_completion_target")
        .unwrap_or(0.9);
    let window = match stats_window(snap, c.stats_reset) {
        Some(w) if w >= th.tune_checkpoint_min_window_seconds => w,
        w => {
            b.out.notes.push(format!(
                "{} of {} were requested, but the checkpoint statistics cover {}: too short \
                 to state a WAL rate; run pgopt tune again later",
                c.requested,
                count(total, "checkpoint", "checkpoints"),
                w.map_or("an unknown time".to_string(), duration)
            ));
            return;
        }
    };
    let interval = window / total as f64;
    let implied = c.requested as f64 * current_kb * 1024.0 / (1.0 + target_ratio) / window;
    let measured = c.wal_bytes.and_then(|w| {
        stats_window(snap, c.wal_stats_reset)
            .filter(|s| *s >= th.tune_checkpoint_min_window_seconds)
            .map(|s| w as f64 / s)
    });
    // pg_stat_wal's measurement when there is one (14+): the implied rate would count a
    // CHECKPOINT command as a max_wal_size of WAL.
    let rate = measured.unwrap_or(implied);
    let needed_kb = rate * timeout_s * (1.0 + target_ratio) * th.tune_wal_headroom / 1024.0;
    let gb = 1024.0 * 1024.0;
    let mut target = if needed_kb >= gb {
        ((needed_kb / gb).ceil() * gb) as u64
    } else {
        ((needed_kb / (256.0 * 1024.0)).ceil() * 256.0 * 1024.0) as u64
    };
    let cap = snap
        .host
        .as_ref()
        .and_then(|h| h.data_disk.as_ref())
        .map(|d| (d.available_bytes as f64 * th.tune_wal_disk_share / 1024.0) as u64);
    let capped = cap.is_some_and(|cap| target > cap);
    if let Some(cap) = cap.filter(|&cap| target > cap) {
        target = round_kb(cap);
    }
    let baseline_kb = b.get("max_wal_size").and_then(kb);
    let share = c.requested as f64 / total as f64;
    let evidence = ev(&[
        ("checkpoints_timed", json!(c.timed)),
        ("checkpoints_requested", json!(c.requested)),
        ("requested_share", json!((share * 1000.0).round() / 1000.0)),
        ("window_seconds", json!(window.round())),
        (
            "seconds_between_checkpoints",
            json!((interval * 10.0).round() / 10.0),
        ),
        ("wal_bytes", json!(c.wal_bytes)),
        ("wal_bytes_per_second", json!(rate.round())),
        ("checkpoint_timeout_s", json!(timeout_s)),
        ("checkpoint_completion_target", json!(target_ratio)),
        ("max_wal_size_kb_now", json!(current_kb)),
        ("needed_kb", json!(needed_kb.round())),
        ("disk_cap_kb", json!(cap)),
    ]);
    let mb = |k: f64| (k / 1024.0).round() as u64;
    if needed_kb <= current_kb {
        b.out.notes.push(format!(
            "{} of {total} checkpoints were requested, but the average WAL rate ({:.1} MB/s) \
             fits in max_wal_size {} MB: bursts, CHECKPOINT commands or base backups; turn on \
             log_checkpoints to see which",
            c.requested,
            rate / 1_048_576.0,
            mb(current_kb)
        ));
        return;
    }
    if baseline_kb.is_some_and(|base| base >= target) {
        b.out.notes.push(format!(
            "{} of {total} checkpoints were requested with max_wal_size {} MB; the \
             recommended max_wal_size {} holds the {} MB one checkpoint_timeout needs",
            c.requested,
            mb(current_kb),
            format_kb(baseline_kb.unwrap_or(0)),
            mb(needed_kb)
        ));
        return;
    }
    let reason = format!(
        "{} of {total} checkpoints ({:.0}%) were requested, one every {:.0} s against \
         checkpoint_timeout {timeout_s} s: WAL at {:.1} MB/s fills max_wal_size {} MB early; \
         one interval needs {} MB x (1 + {target_ratio}) x {} headroom{}",
        c.requested,
        share * 100.0,
        interval,
        rate / 1_048_576.0,
        mb(current_kb),
        mb(rate * timeout_s / 1024.0),
        th.tune_wal_headroom,
        if capped {
            format!(
                ", capped at {:.0}% of the data disk's free space",
                th.tune_wal_disk_share * 100.0
            )
        } else {
            String::new()
        }
    );
    b.set(
        "checkpoints",
        "max_wal_size",
        format_kb(target),
        reason,
        evidence,
    );
}

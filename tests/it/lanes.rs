//! Segments with lanes (`--lanes`, `Builder::lanes`): a stalled writer
//! holds up only its own lane, writers killed at every step of a lane write
//! lose only the record in flight and their lane is recycled, threads beyond
//! the lanes share the ring in order, and a flusher killed mid-batch loses
//! and repeats nothing.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{wait_child, wait_until, Scratch};
use crate::faults::{flusher_killed, seqs, stat, worker};

fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| st.rsplit(')').next().unwrap().trim_start().starts_with('T'))
        .unwrap_or(false)
}

/// The lanes that still have a writer or wait to be recycled.
fn lanes_taken(s: &Scratch) -> usize {
    stat(s)["lanes"]["taken"].as_array().map_or(0, Vec::len)
}

/// One writer stopped between writing a record and publishing it (what a
/// paused container or a debugger does) for at least 5 s, while three
/// others, then three more, write far more than the segment holds, on the
/// default segment: with lanes they never wait for it, none of their
/// records is dropped, and once it resumes its record arrives too (nothing
/// is abandoned: a lane's unpublished record holds up no one, so there is
/// nothing to give up, even with a 1 s unblock timeout). On the shared ring
/// alone (`--lanes 0`) a stall like it drops the others' records once the
/// ring fills behind the stalled one (7 and 8 in two runs of 1.5 s).
#[test]
fn a_stalled_writer_holds_up_only_its_own_lane() {
    let s = Scratch::new("lane-stall");
    let f = s.flusher_ready(&["--unblock-timeout", "1", "--format", "%(message)s"]);
    let a = worker(&s, 0, 1000, Some("stop_before_commit:500"));
    let pid = a.id();
    assert!(wait_until(Duration::from_secs(30), || stopped(pid)));
    let stalled_at = std::time::Instant::now();
    let stall = Duration::from_secs(5);
    for round in [1..=3, 4..=6] {
        let others: Vec<_> = round
            .clone()
            .map(|id| worker(&s, id, 100_000, None))
            .collect();
        for (id, w) in round.clone().zip(others) {
            let status = wait_child(w, Duration::from_secs(120));
            assert!(status.success(), "worker {id} lost records: {status}");
        }
        assert!(
            wait_until(Duration::from_secs(30), || round
                .clone()
                .all(|id| seqs(&s).get(&id).map(Vec::len) == Some(100_000))),
            "the others' records reach the file while one writer is stopped"
        );
        // The second round writes on into the fifth second of the stall.
        if let Some(left) = (stall / 2).checked_sub(stalled_at.elapsed()) {
            std::thread::sleep(left);
        }
    }
    if let Some(left) = stall.checked_sub(stalled_at.elapsed()) {
        std::thread::sleep(left);
    }
    assert!(stopped(pid), "the stalled writer stayed stopped throughout");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    assert!(wait_child(a, Duration::from_secs(60)).success());
    assert!(wait_until(Duration::from_secs(30), || seqs(&s)
        .get(&0)
        .map(Vec::len)
        == Some(1000)));
    let v = stat(&s);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let got = seqs(&s);
    assert_eq!(got[&0], (0..1000).collect::<Vec<_>>());
    for id in 1..=6 {
        assert_eq!(got[&id], (0..100_000).collect::<Vec<_>>(), "worker {id}");
    }
    assert_eq!(v["dropped"], 0, "{v}");
    assert_eq!(v["abandoned"], 0, "{v}");
    assert_eq!(v["lanes"]["count"], 64, "lanes by default: {v}");
}

/// Kill a writer at `point` of its 500th record, in its lane: a second
/// writer gets all its records through, the killed one's first 499 are
/// kept, its record in flight is counted as abandoned if it had begun to
/// write it (`abandoned`), and its lane is recycled.
fn killed_in_a_lane(point: &str, abandoned: u64) {
    let s = Scratch::new(&format!("lane-{point}"));
    let f = s.flusher_ready(&["--lanes", "4", "--format", "%(message)s"]);
    let status = worker(&s, 0, 1000, Some(&format!("{point}:500")))
        .wait()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: fired");
    let b = worker(&s, 1, 1000, None);
    assert!(wait_child(b, Duration::from_secs(120)).success());
    assert!(
        wait_until(Duration::from_secs(25), || seqs(&s).get(&1).map(Vec::len)
            == Some(1000)
            && lanes_taken(&s) == 0),
        "{point}: the dead writer's lane was recycled: {}",
        stat(&s)
    );
    let v = stat(&s);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let got = seqs(&s);
    assert_eq!(got[&0], (0..499).collect::<Vec<_>>(), "{point}");
    assert_eq!(got[&1], (0..1000).collect::<Vec<_>>(), "{point}");
    assert_eq!(v["abandoned"], abandoned, "{point}: {v}");
    assert_eq!(v["lanes"]["chunks_held"], 0, "{point}: {v}");
}

#[test]
fn killed_in_a_lane_after_reserving_space() {
    // Nothing of the record is in the segment yet: nothing to count.
    killed_in_a_lane("after_reserve", 0);
}

#[test]
fn killed_in_a_lane_after_writing_the_header() {
    killed_in_a_lane("after_header", 1);
}

#[test]
fn killed_in_a_lane_in_the_middle_of_the_payload() {
    killed_in_a_lane("mid_payload", 1);
}

#[test]
fn killed_in_a_lane_before_the_commit() {
    killed_in_a_lane("before_commit", 1);
}

/// Eight threads on a segment of two lanes: two write in lanes, the others
/// in the shared ring (with the CAS), and every thread's records reach the
/// file all and in its order; the lanes are released when the threads end.
#[test]
fn threads_beyond_the_lanes_share_the_ring_in_order() {
    let s = Scratch::new("lane-threads");
    let f = s.flusher_ready(&["--lanes", "2", "--format", "%(message)s"]);
    let producer = ringflush_producer::Producer::open(&s.shm).unwrap();
    std::thread::scope(|scope| {
        for id in 0..8u64 {
            let p = &producer;
            scope.spawn(move || {
                for seq in 0..20_000 {
                    p.log(20, "t", &format!("worker={id} seq={seq}")).unwrap();
                }
            });
        }
    });
    assert!(wait_until(Duration::from_secs(60), || seqs(&s)
        .values()
        .map(Vec::len)
        .sum::<usize>()
        == 8 * 20_000));
    assert!(
        wait_until(Duration::from_secs(10), || lanes_taken(&s) == 0),
        "the threads' lanes were released: {}",
        stat(&s)
    );
    drop(producer);
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let got: BTreeMap<u64, Vec<u64>> = seqs(&s);
    for id in 0..8 {
        assert_eq!(got[&id], (0..20_000).collect::<Vec<_>>(), "thread {id}");
    }
}

/// More writers one after another than there are lanes: each finds a lane,
/// since the lanes of writers that exited are recycled.
#[test]
fn lanes_of_exited_writers_are_recycled() {
    let s = Scratch::new("lane-recycle");
    let f = s.flusher_ready(&["--lanes", "2", "--format", "%(message)s"]);
    for id in 0..6 {
        let w = s
            .worker_cmd(id, 200)
            .args(["--pause-us", "5000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || lanes_taken(&s) == 1),
            "worker {id} writes in a lane: {}",
            stat(&s)
        );
        assert!(wait_child(w, Duration::from_secs(60)).success());
        assert!(
            wait_until(Duration::from_secs(10), || lanes_taken(&s) == 0),
            "lane of worker {id} recycled: {}",
            stat(&s)
        );
    }
    let (ok, err) = f.stop();
    assert!(ok, "{err}");
    let got = seqs(&s);
    for id in 0..6 {
        assert_eq!(got[&id], (0..200).collect::<Vec<_>>(), "worker {id}");
    }
}

#[test]
fn flusher_killed_between_write_and_release_with_lanes() {
    flusher_killed("after_write:2", "not writing it again", 4);
}

#[test]
fn flusher_killed_in_the_middle_of_a_write_with_lanes() {
    flusher_killed("mid_write:2", "removed its", 4);
}

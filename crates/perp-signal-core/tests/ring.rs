//! The /dev/shm ring through its public API: real files in /dev/shm, a producer and a consumer
//! (threads here; the jest suite and the benchmark use separate processes).
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use perp_signal_core::ring::{Consumer, Pop, Producer, ProducerOptions, Push, RingError, StartAt};

/// A queue name unique to this test process, removed (with anything left) when dropped.
struct Name(String);
impl Name {
    fn new(tag: &str) -> Self {
        let n = Name(format!("ps-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(n.path());
        n
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/dev/shm").join(&self.0)
    }
}
impl Drop for Name {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

fn producer(name: &Name, capacity: u64) -> Producer {
    Producer::create(&name.0, capacity, ProducerOptions::default()).expect("create producer")
}

fn pop_record(c: &mut Consumer, buf: &mut [u8]) -> Pop {
    c.pop_into(buf).expect("pop")
}

#[test]
fn round_trip_across_threads_with_wraparound() {
    let name = Name::new("rt");
    let mut p = producer(&name, 4096);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    const N: u64 = 200_000;
    let t = std::thread::spawn(move || {
        let mut i = 0u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        while i < N && Instant::now() < deadline {
            // Sizes 0..=100 bytes, so records straddle the end of the 4 KiB ring at every offset.
            let len = (i % 101) as usize;
            let msg: Vec<u8> = (0..len).map(|k| (i as usize + k) as u8).collect();
            if p.push(&msg).expect("push") == Push::Pushed {
                i += 1;
            } else {
                // Yield, not spin: on a loaded 2-core CI box the consumer may have no core while
                // this thread burns its whole time slice on a full ring.
                std::thread::yield_now();
            }
        }
        p.stats()
    });
    let mut buf = [0u8; 128];
    let mut next = 0u64;
    let mut lost_events = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while next < N && Instant::now() < deadline {
        match pop_record(&mut c, &mut buf) {
            Pop::Record { len, seq } => {
                let want: Vec<u8> = (0..(next % 101) as usize)
                    .map(|k| (next as usize + k) as u8)
                    .collect();
                assert_eq!(&buf[..len], &want[..], "record {next}");
                // The producer retries dropped pushes, so seq counts drops too: only order matters.
                assert!(seq >= next);
                next += 1;
            }
            Pop::Lost { .. } => lost_events += 1,
            Pop::Empty => std::thread::yield_now(),
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = t.join().expect("producer thread");
    assert_eq!(next, N);
    assert_eq!(stats.pushed, N);
    // Every drop the producer counted surfaced as a gap (retries make each drop a gap of its own
    // or merge into a bigger one).
    assert_eq!(c.stats().lost, stats.dropped);
    assert!(lost_events as u64 <= stats.dropped);
}

#[test]
fn full_ring_drops_counts_and_the_consumer_sees_the_gap() {
    let name = Name::new("full");
    let mut p = producer(&name, 4096);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    // 64-byte records: 63 fit in 4 KiB (the word after the last record must stay free).
    let msg = [7u8; 56];
    let mut results = Vec::new();
    for _ in 0..70 {
        results.push(p.push(&msg).expect("push"));
    }
    assert_eq!(results.iter().filter(|r| **r == Push::Pushed).count(), 63);
    assert_eq!(p.stats().dropped, 7);
    assert_eq!(c.stats().producer_dropped, 7);
    let mut buf = [0u8; 64];
    for i in 0..63 {
        assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 56, seq: i });
    }
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Empty);
    p.push(b"after").expect("push");
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Lost { count: 7 });
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 5, seq: 70 });
    assert_eq!(&buf[..5], b"after");
    assert_eq!(c.stats().lost, 7);
}

#[test]
fn overrun_consumer_resyncs_from_the_header_copy() {
    let name = Name::new("resync");
    let mut p = producer(&name, 4096);
    p.set_header(b"HDR0", b"state0").expect("header");
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let snap = c.header().expect("initial header");
    assert_eq!((snap.seq, snap.pos), (0, 0));
    assert_eq!(
        (&snap.header[..], &snap.state[..]),
        (&b"HDR0"[..], &b"state0"[..])
    );
    assert!(c.resync(&snap));
    // The consumer pauses while 300 messages arrive: 64-byte records (one cache line each), 63
    // fit, 237 are dropped.
    for i in 0..300u32 {
        p.push(&i.to_le_bytes()).expect("push");
    }
    assert_eq!(p.stats().dropped, 237);
    assert!(!p.header_wanted());
    let mut buf = [0u8; 64];
    for i in 0..30u32 {
        assert_eq!(
            pop_record(&mut c, &mut buf),
            Pop::Record {
                len: 4,
                seq: u64::from(i)
            }
        );
    }
    for i in 300..400u32 {
        p.push(&i.to_le_bytes()).expect("push");
    }
    // Drain to the gap, then ask for a header; the producer answers at its next publish.
    loop {
        match pop_record(&mut c, &mut buf) {
            Pop::Record { .. } => {}
            Pop::Lost { count } => {
                assert!(count > 0);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    c.request_header();
    assert!(p.header_wanted());
    let stale = c.header().expect("old header");
    assert!(
        !c.resync(&stale),
        "a header from before our position must be refused"
    );
    let next_seq = p.stats().pushed + p.stats().dropped;
    p.set_header(b"HDR1", b"state1").expect("header");
    assert!(!p.header_wanted());
    p.push(b"first after resync").expect("push");
    let snap = c.header().expect("fresh header");
    assert_eq!(snap.seq, next_seq);
    assert_eq!(&snap.header[..], b"HDR1");
    assert!(c.resync(&snap));
    assert_eq!(
        pop_record(&mut c, &mut buf),
        Pop::Record {
            len: 18,
            seq: next_seq
        }
    );
    assert_eq!(&buf[..18], b"first after resync");
    // Lost = everything between the last record read and the resync point.
    let st = c.stats();
    assert_eq!(st.popped + st.lost, next_seq + 1);
}

#[test]
fn restart_in_place_changes_the_epoch_and_the_consumer_follows() {
    let name = Name::new("epoch");
    let keep = ProducerOptions { keep: true };
    let mut p = Producer::create(&name.0, 8192, keep).expect("create");
    let e1 = p.epoch();
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    p.push(b"one").expect("push");
    let mut buf = [0u8; 16];
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 3, seq: 0 });
    p.push(b"unread").expect("push");
    drop(p);
    assert!(name.path().exists(), "keep leaves the file");
    // What was pushed before a clean shutdown is still delivered, then the end is reported.
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 6, seq: 1 });
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Closed);
    let mut p2 = producer(&name, 8192);
    assert_ne!(p2.epoch(), e1);
    p2.push(b"two").expect("push");
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Epoch { epoch: p2.epoch() });
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 3, seq: 0 });
    assert_eq!(&buf[..3], b"two");
    assert!(!c.replaced());
    drop(p2);
    assert!(!name.path().exists(), "clean shutdown removes the file");
    assert!(c.replaced());
}

#[test]
fn a_new_capacity_replaces_the_file_and_old_consumers_see_it_closed() {
    let name = Name::new("recap");
    let p = Producer::create(&name.0, 4096, ProducerOptions { keep: true }).expect("create");
    drop(p);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let _p2 = producer(&name, 16384);
    let mut buf = [0u8; 8];
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Closed);
    assert!(c.replaced());
    assert_eq!(std::fs::metadata(name.path()).expect("stat").len(), 20480 + 16384);
}

#[test]
fn a_live_producer_or_consumer_is_never_taken_over() {
    let name = Name::new("busy");
    let p = producer(&name, 4096);
    let err = Producer::create(&name.0, 4096, ProducerOptions::default()).err();
    let err = err.expect("second producer must fail");
    assert_eq!(err.code(), "E_QUEUE_BUSY");
    assert!(
        err.to_string().contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    let c = Consumer::open(&name.0, StartAt::Latest).expect("open");
    let err = Consumer::open(&name.0, StartAt::Latest)
        .err()
        .expect("second consumer");
    assert_eq!(err.code(), "E_QUEUE_BUSY");
    drop(c);
    Consumer::open(&name.0, StartAt::Latest).expect("reopen after the first consumer left");
    drop(p);
}

#[test]
fn file_is_private_and_symlinks_are_never_followed() {
    let name = Name::new("perm");
    let p = producer(&name, 4096);
    let mode = std::fs::metadata(name.path()).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(p);

    let link = Name::new("link");
    let target = Name::new("target");
    std::fs::write(target.path(), b"precious").expect("write target");
    std::os::unix::fs::symlink(target.path(), link.path()).expect("symlink");
    let err = Producer::create(&link.0, 4096, ProducerOptions::default()).err();
    assert_eq!(err.expect("must refuse").code(), "E_NOT_A_QUEUE");
    let err = Consumer::open(&link.0, StartAt::Oldest).err();
    assert_eq!(err.expect("must refuse").code(), "E_NOT_A_QUEUE");
    assert_eq!(std::fs::read(target.path()).expect("read"), b"precious");

    let foreign = Name::new("foreign");
    std::fs::write(foreign.path(), vec![1u8; 8192]).expect("write");
    let err = Producer::create(&foreign.0, 4096, ProducerOptions::default()).err();
    assert_eq!(err.expect("must refuse").code(), "E_NOT_A_QUEUE");
    assert_eq!(std::fs::read(foreign.path()).expect("read"), vec![1u8; 8192]);
}

#[test]
fn bad_input_gets_clear_errors() {
    let code = |r: Result<Producer, RingError>| r.err().map(|e| e.code());
    let o = ProducerOptions::default();
    assert_eq!(code(Producer::create("a/b", 4096, o)), Some("E_BAD_NAME"));
    assert_eq!(code(Producer::create("..", 4096, o)), Some("E_BAD_NAME"));
    assert_eq!(code(Producer::create("", 4096, o)), Some("E_BAD_NAME"));
    let name = Name::new("cap");
    assert_eq!(code(Producer::create(&name.0, 1000, o)), Some("E_BAD_CAPACITY"));
    assert_eq!(code(Producer::create(&name.0, 2048, o)), Some("E_BAD_CAPACITY"));
    assert!(!name.path().exists());
    let err = Consumer::open(&name.0, StartAt::Oldest).err().expect("no queue");
    assert_eq!(err.code(), "E_NO_QUEUE");

    let mut p = producer(&name, 4096);
    let err = p.push(&[0u8; 4025]).expect_err("too large");
    assert_eq!(err.code(), "E_RECORD_TOO_LARGE");
    assert!(err.to_string().contains("at most 4024"), "{err}");
    assert_eq!(p.push(&[0u8; 4024]).expect("largest"), Push::Pushed);
    let err = p.set_header(&[0u8; 20000], b"").expect_err("header too large");
    assert_eq!(err.code(), "E_HEADER_TOO_LARGE");
    let err = p.push_framed(&[5, 0, 0, 0, 1, 2]).expect_err("bad frame");
    assert_eq!(err.code(), "E_BAD_FRAME");
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let mut small = [0u8; 10];
    let err = c.pop_into(&mut small).expect_err("buffer too small");
    assert_eq!(err.code(), "E_BUFFER_TOO_SMALL");
    let mut big = vec![0u8; 4024];
    assert_eq!(
        c.pop_into(&mut big).expect("pop"),
        Pop::Record { len: 4024, seq: 0 }
    );
}

#[test]
fn framed_batches_become_one_record_per_frame() {
    let name = Name::new("framed");
    let mut p = producer(&name, 4096);
    let mut c = Consumer::open(&name.0, StartAt::Latest).expect("open");
    let mut framed = Vec::new();
    for m in [&b"START"[..], b"", b"abc"] {
        framed.extend_from_slice(&(m.len() as u32).to_le_bytes());
        framed.extend_from_slice(m);
    }
    assert_eq!(p.push_framed(&framed).expect("push"), 0);
    let mut out = Vec::new();
    while let Ok((rec, _)) = c.pop().expect("pop") {
        out.push(rec);
    }
    assert_eq!(out, vec![b"START".to_vec(), vec![], b"abc".to_vec()]);
}

/// A second reader of the mapping (the Node binding's JS fast path) pops records itself, storing
/// the read cursor in the control block; advance_to hands its progress back.
#[test]
fn an_outside_reader_hands_its_progress_back_and_bad_hand_overs_are_refused() {
    let name = Name::new("handover");
    let mut p = producer(&name, 4096);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let mut buf = [0u8; 64];
    for m in [&b"one"[..], b"two", b"three", b"four"] {
        p.push(m).expect("push");
    }
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 3, seq: 0 });
    let (read, expected) = c.position();
    assert_eq!((read, expected), (64, Some(1)));
    // An outside reader took "two" and "three" (64 bytes each) from the shared region, as
    // pop_into would; here only its hand-over is played.
    assert!(c.shared_region().len() as u64 >= 20480 + 4096);
    // Refused: backwards, unaligned, beyond the write cursor, or a count that does not match.
    for (r, e, n) in [(0, 2, 1), (136, 2, 1), (4096, 2, 1), (192, 3, 1), (192, 0, 0)] {
        assert!(
            matches!(c.advance_to(r, e, n), Err(RingError::Corrupt { .. })),
            "{r} {e} {n}"
        );
    }
    assert_eq!(c.position(), (64, Some(1)), "a refused hand-over changes nothing");
    c.advance_to(192, 3, 2).expect("hand-over");
    assert_eq!(c.stats().popped, 3);
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 4, seq: 3 });
    assert_eq!(&buf[..4], b"four");
}

/// The mapped bytes outlive the consumer through shared_region, but its lock does not: another
/// consumer can attach at once.
#[test]
fn a_shared_region_outlives_the_consumer_without_keeping_its_lock() {
    let name = Name::new("region");
    let mut p = producer(&name, 4096);
    p.push(b"kept").expect("push");
    let c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let region = c.shared_region();
    drop(c);
    let mut c2 = Consumer::open(&name.0, StartAt::Oldest).expect("the lock went with the consumer");
    let mut buf = [0u8; 16];
    assert_eq!(pop_record(&mut c2, &mut buf), Pop::Record { len: 4, seq: 0 });
    drop(c2);
    drop(p);
    assert!(!name.path().exists());
    // Still mapped: the region owns it until dropped.
    assert_eq!(region.len(), 20480 + 4096);
    assert!(!region.as_ptr().is_null());
}

/// Layout version 2: every record starts on a 64-byte line, whatever its size, and a payload that
/// runs past the end of the ring continues byte-wise at its start.
#[test]
fn records_start_on_cache_lines_and_wrapped_payloads_are_exact() {
    let name = Name::new("lines");
    let mut p = producer(&name, 4096);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let mut buf = [0u8; 256];
    let mut wrapped = 0;
    // Sizes 0..=200 twice over: about 14 laps of the 4 KiB ring, so records of each size start
    // at many lines and every size that spans lines wraps somewhere.
    for i in 0..402u64 {
        let len = (i % 201) as usize;
        let msg: Vec<u8> = (0..len).map(|k| (i as usize * 31 + k) as u8).collect();
        let (before, _) = c.position();
        assert_eq!(before % 64, 0, "record {i} starts off a cache line");
        assert_eq!(p.push(&msg).expect("push"), Push::Pushed);
        assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len, seq: i });
        assert_eq!(&buf[..len], &msg[..], "payload of record {i}");
        let (after, _) = c.position();
        assert_eq!(after - before, (8 + len as u64 + 63) & !63, "size of record {i}");
        if (before + 8) / 4096 != (before + 8 + len as u64).saturating_sub(1) / 4096 && len > 0 {
            wrapped += 1;
        }
    }
    assert!(wrapped >= 5, "only {wrapped} payloads wrapped");
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Empty);
}

/// A consumer steps through the ring by the record sizes of its own layout version, so it must
/// refuse any other version; a producer replaces a dead producer's file of another version.
#[test]
fn another_layout_version_is_refused_by_consumers_and_replaced_by_producers() {
    use std::os::unix::fs::FileExt;
    let name = Name::new("version");
    let set_version = |v: u32| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(name.path())
            .expect("open file");
        f.write_all_at(&v.to_le_bytes(), 8).expect("write version");
    };
    let p = Producer::create(&name.0, 4096, ProducerOptions { keep: true }).expect("create");
    for other in [1u32, 3] {
        set_version(other);
        let err = Consumer::open(&name.0, StartAt::Oldest)
            .err()
            .expect("must refuse");
        assert_eq!(err.code(), "E_BAD_LAYOUT");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "layout version {other}, this consumer reads version 2 only"
            )),
            "{msg}"
        );
        assert!(
            msg.contains("upgrade the consumer or restart the producer"),
            "{msg}"
        );
    }
    set_version(2);
    drop(Consumer::open(&name.0, StartAt::Oldest).expect("version 2 is read"));
    drop(p); // kept: the file stays, its producer lock is released
    set_version(1);
    let old = std::fs::metadata(name.path()).expect("stat");
    let _p = producer(&name, 4096);
    let new = std::fs::metadata(name.path()).expect("stat");
    use std::os::unix::fs::MetadataExt;
    assert_ne!(old.ino(), new.ino(), "the version-1 file was reused in place");
    let bytes = std::fs::read(name.path()).expect("read");
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open the new file");
    assert_eq!(pop_record(&mut c, &mut [0u8; 8]), Pop::Empty);
}

/// The consumer stores its read cursor once per 1/16 of the ring (at most 4 KiB) and whenever it
/// runs empty, not at every pop; nothing read is ever handed out twice or lost by that.
#[test]
fn the_read_cursor_is_released_in_batches_and_whenever_the_ring_runs_empty() {
    let name = Name::new("release");
    let mut p = producer(&name, 4096); // 256-byte batches: four 64-byte records
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    for i in 0..10u8 {
        p.push(&[i; 20]).expect("push");
    }
    assert_eq!(p.backlog(), 640);
    let mut buf = [0u8; 64];
    for i in 0..3 {
        assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 20, seq: i });
    }
    assert_eq!(p.backlog(), 640, "three records are less than a batch");
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 20, seq: 3 });
    assert_eq!(p.backlog(), 384, "the fourth completes a batch");
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 20, seq: 4 });
    // A consumer that goes away hands its exact position to the next one.
    drop(c);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("reopen");
    for i in 5..10 {
        assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 20, seq: i });
        assert_eq!(buf[0], i as u8);
    }
    assert_eq!(p.backlog(), 64, "released at the fourth, not yet the fifth");
    p.push(b"x").expect("push");
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Record { len: 1, seq: 10 });
    assert_eq!(pop_record(&mut c, &mut buf), Pop::Empty);
    assert_eq!(p.backlog(), 0, "a consumer that ran empty shows an empty ring");
}

/// A ring kept full for several laps: the producer writes right behind the consumer, seeing room
/// only as the consumer releases it in batches; every payload is exact.
#[test]
fn a_ring_kept_full_for_many_laps_delivers_every_record_exactly() {
    let name = Name::new("keptfull");
    let mut p = producer(&name, 4096);
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("open");
    let msg = |i: u64| -> Vec<u8> {
        (0..(i * 7 % 121) as usize)
            .map(|k| (i as usize ^ k) as u8)
            .collect()
    };
    let mut sent = 0u64;
    while p.try_push(&msg(sent)).expect("push") {
        sent += 1;
    }
    assert!(sent > 20, "{sent}");
    let mut buf = [0u8; 128];
    for i in 0..2000u64 {
        match pop_record(&mut c, &mut buf) {
            Pop::Record { len, seq } => {
                assert_eq!(seq, i);
                assert_eq!(&buf[..len], &msg(i)[..], "record {i}");
            }
            other => panic!("record {i}: {other:?}"),
        }
        // Refill to full again: the producer only sees room in the consumer's batches.
        while p.try_push(&msg(sent)).expect("push") {
            sent += 1;
        }
    }
    assert!(sent > 2000 + 20, "{sent}");
    assert_eq!(p.stats().dropped, 0);
}

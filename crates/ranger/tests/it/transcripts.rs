//! The reference transcripts (`paper1`, `equal`, `emptyA`, `emptyB`, `lww`, `many` of the vectors
//! file) reproduced part by part in reference mode.

use ranger::Config;

use crate::support::{Side, contents, describe, lww_union, run, store};

const T: u64 = 1000;

/// Runs a case in reference mode and returns the messages as (sender, part lines).
fn transcript<S: AsRef<str>>(
    a: &[(S, u64)],
    b: &[(S, u64)],
) -> (Vec<(Side, Vec<String>)>, [u64; 4]) {
    let mut sa = store(a);
    let mut sb = store(b);
    let expected = lww_union(&contents(&sa), &contents(&sb));
    let run = run(&mut sa, &mut sb, Config::reference(), Config::reference());
    assert_eq!(contents(&sa), expected, "A did not converge");
    assert_eq!(contents(&sb), expected, "B did not converge");
    let lines = run
        .transcript
        .iter()
        .map(|(side, msg)| (*side, describe(msg)))
        .collect();
    let counters = [
        run.a.entries_sent,
        run.a.entries_received,
        run.b.entries_sent,
        run.b.entries_received,
    ];
    (lines, counters)
}

fn lines(side: Side, parts: &[&str]) -> (Side, Vec<String>) {
    (side, parts.iter().map(|s| s.to_string()).collect())
}

fn keys(names: &[&str]) -> Vec<(String, u64)> {
    names.iter().map(|n| (n.to_string(), T)).collect()
}

#[test]
fn paper1() {
    let a = keys(&["ape", "eel", "fox", "gnu"]);
    let b = keys(&["bee", "cat", "doe", "eel", "fox", "hog"]);
    let (got, counters) = transcript(&a, &b);
    let want = vec![
        lines(Side::A, &["FP[ape..ape)"]),
        lines(Side::B, &["FP[eel..bee)", "FP[bee..eel)"]),
        lines(
            Side::A,
            &["FP[eel..gnu)", "FP[gnu..bee)", "ITEM[bee..eel) [] hl=false"],
        ),
        lines(
            Side::B,
            &[
                "ITEM[bee..eel) [bee,cat,doe] hl=true",
                "ITEM[gnu..bee) [hog] hl=false",
            ],
        ),
        // Values of a wrapping range go out in ascending order, as in the reference.
        lines(Side::A, &["ITEM[gnu..bee) [ape,gnu] hl=true"]),
    ];
    assert_eq!(got, want);
    // a_sent, a_recv, b_sent, b_recv
    assert_eq!(counters, [2, 4, 4, 2]);
}

#[test]
fn equal() {
    let a = keys(&["ape", "eel"]);
    let (got, counters) = transcript(&a, &a);
    assert_eq!(got, vec![lines(Side::A, &["FP[ape..ape)"])]);
    assert_eq!(counters, [0, 0, 0, 0]);
}

#[test]
fn empty_a() {
    let b = keys(&["ape", "eel", "fox"]);
    let (got, counters) = transcript(&[], &b);
    let want = vec![
        // The empty store anchors at the caller's empty key ("" here).
        lines(Side::A, &["FP[..)"]),
        lines(Side::B, &["ITEM[..) [ape,eel,fox] hl=false"]),
    ];
    assert_eq!(got, want);
    assert_eq!(counters, [0, 3, 3, 0]);
}

#[test]
fn empty_b() {
    let a = keys(&["ape", "eel", "fox"]);
    let (got, counters) = transcript(&a, &[]);
    let want = vec![
        lines(Side::A, &["FP[ape..ape)"]),
        lines(Side::B, &["ITEM[ape..ape) [] hl=false"]),
        lines(Side::A, &["ITEM[ape..ape) [ape,eel,fox] hl=true"]),
    ];
    assert_eq!(got, want);
    assert_eq!(counters, [3, 0, 0, 3]);
}

#[test]
fn lww() {
    let (got, counters) = transcript(&[("k", 1000)], &[("k", 2000)]);
    let want = vec![
        lines(Side::A, &["FP[k..k)"]),
        lines(Side::B, &["ITEM[k..k) [k] hl=false"]),
    ];
    assert_eq!(got, want);
    assert_eq!(counters, [0, 1, 1, 0]);
}

#[test]
fn lww_older_side_answers_nothing_and_newer_wins() {
    let mut a = store(&[("k", 1000)]);
    let mut b = store(&[("k", 2000)]);
    run(&mut a, &mut b, Config::reference(), Config::reference());
    assert_eq!(
        a.get(&crate::support::Key("k".into())).unwrap().value.0,
        2000
    );
    assert_eq!(
        b.get(&crate::support::Key("k".into())).unwrap().value.0,
        2000
    );
}

#[test]
fn many() {
    let a_names: Vec<String> = (0..16).map(|i| format!("k{i:02}")).collect();
    let mut b_names: Vec<String> = a_names
        .iter()
        .filter(|k| *k != "k05" && *k != "k11")
        .cloned()
        .collect();
    b_names.push("k99".to_string());
    let a: Vec<&str> = a_names.iter().map(|s| s.as_str()).collect();
    let b: Vec<&str> = b_names.iter().map(|s| s.as_str()).collect();
    let (got, counters) = transcript(&keys(&a), &keys(&b));
    let want = vec![
        lines(Side::A, &["FP[k00..k00)"]),
        lines(Side::B, &["FP[k08..k00)", "FP[k00..k08)"]),
        lines(
            Side::A,
            &[
                "FP[k08..k12)",
                "FP[k12..k00)",
                "FP[k00..k04)",
                "FP[k04..k08)",
            ],
        ),
        lines(
            Side::B,
            &[
                "ITEM[k08..k09) [k08] hl=false",
                "FP[k09..k12)",
                "FP[k12..k14)",
                "FP[k14..k00)",
                "ITEM[k04..k06) [k04] hl=false",
                "FP[k06..k08)",
            ],
        ),
        lines(
            Side::A,
            &[
                "ITEM[k04..k06) [k05] hl=true",
                "ITEM[k09..k10) [k09] hl=false",
                "FP[k10..k12)",
                "ITEM[k14..k15) [k14] hl=false",
                "ITEM[k15..k00) [k15] hl=false",
            ],
        ),
        lines(
            Side::B,
            &[
                "ITEM[k15..k00) [k99] hl=true",
                "ITEM[k10..k12) [k10] hl=false",
            ],
        ),
        lines(Side::A, &["ITEM[k10..k12) [k11] hl=true"]),
    ];
    assert_eq!(got, want);
    assert_eq!(counters, [5, 4, 4, 5]);
}

/// The same cases with a budget large enough for everything: same outcome, possibly another
/// part order.
#[test]
fn reference_cases_converge_in_bounded_mode() {
    type Set = Vec<(String, u64)>;
    let cases: Vec<(Set, Set)> = vec![
        (
            keys(&["ape", "eel", "fox", "gnu"]),
            keys(&["bee", "cat", "doe", "eel", "fox", "hog"]),
        ),
        (keys(&["ape", "eel"]), keys(&["ape", "eel"])),
        (vec![], keys(&["ape", "eel", "fox"])),
        (keys(&["ape", "eel", "fox"]), vec![]),
        (vec![("k".into(), 1000)], vec![("k".into(), 2000)]),
    ];
    for (a, b) in cases {
        for budget in [Config::MIN_MESSAGE_BYTES, 120, 1 << 20] {
            let mut sa = store(&a);
            let mut sb = store(&b);
            let expected = lww_union(&contents(&sa), &contents(&sb));
            let config = Config::custom(2, 1, Some(budget)).unwrap();
            run(&mut sa, &mut sb, config, Config::reference());
            assert_eq!(contents(&sa), expected);
            assert_eq!(contents(&sb), expected);
        }
    }
}

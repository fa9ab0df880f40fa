//! Imported configuration cannot blow up (issue 10, item 8): `%(x)s` interpolation and
//! `<tag>` substitution are bounded in size and work, not only in depth; a diamond of
//! includes is read once per file; includes nest boundedly; every error names file and line.
//!
//! Each case runs under a watchdog: before these bounds they ran for hours (10^10 bytes,
//! 2^30 merged files), so "did not finish within a minute" is the failure, not a timing goal.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use portcullis_fail2ban::{
    ConfigSet, FilterDef, Import, ImportOptions, InterpolateError, LoadError, MAX_INCLUDE_DEPTH,
    MAX_INTERPOLATED_LEN, Vars,
};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// `f()` on its own thread; panics when it does not return within a minute.
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not finish within a minute"))
}

/// `[s]` with `l0 = LEAF` and `lN = %(lN-1)s` ten times, for N in 1..=9: `l9` expands to
/// 10^9 copies of LEAF.
fn laughs(leaf: &str) -> String {
    let mut text = format!("[DEFAULT]\nl0 = {leaf}\n");
    for n in 1..=9 {
        let _ = writeln!(text, "l{n} = {}", format!("%(l{})s", n - 1).repeat(10));
    }
    text.push_str("[s]\nbomb = %(l9)s\nsmall = %(l2)s\n");
    text
}

#[test]
fn a_billion_laughs_of_references_is_an_error_naming_file_and_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "laughs.conf", &laughs("ha"));
    let path = tmp.path().join("laughs.conf");
    let set = ConfigSet::read_files(&[path]).expect("the file itself is fine");
    // Small expansions still work: l2 is 100 × "ha".
    assert_eq!(
        set.get_text("s", "small", &Vars::new())
            .expect("ok")
            .as_deref(),
        Some("ha".repeat(100).as_str())
    );
    let e = finishes("expanding the bomb", move || {
        set.get("s", "bomb", &Vars::new()).expect_err("too large")
    });
    assert!(
        matches!(e, InterpolateError::TooLarge { limit, .. } if limit == MAX_INTERPOLATED_LEN),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("laughs.conf:13: bomb: interpolation expands beyond 1048576 bytes"),
        "{msg}"
    );
}

#[test]
fn laughs_of_empty_values_are_bounded_by_work_not_only_by_size() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "empty.conf", &laughs(""));
    let set = ConfigSet::read_files(&[tmp.path().join("empty.conf")]).expect("load");
    let e = finishes("expanding the empty bomb", move || {
        set.get("s", "bomb", &Vars::new())
            .expect_err("too much work")
    });
    assert!(matches!(e, InterpolateError::TooMuchWork { .. }), "{e:?}");
    assert!(e.to_string().contains("empty.conf:13: bomb: "), "{e}");
}

#[test]
fn doubling_tags_in_a_filter_are_bounded() {
    let tmp = tempfile::tempdir().expect("tmp");
    // <t40> doubles forty times: 2^40 copies of "x", each tag replaced once.
    let mut text = String::from("[Definition]\nt0 = x\n");
    for n in 1..=40 {
        let _ = writeln!(text, "t{n} = <t{}><t{}>", n - 1, n - 1);
    }
    text.push_str("failregex = ^<t40> <HOST>$\n");
    write(tmp.path(), "filter.d/tags.conf", &text);
    let dir = tmp.path().to_path_buf();
    let e = finishes("substituting the tags", move || {
        FilterDef::load(&dir, "tags", &[]).expect_err("too large")
    });
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            LoadError::Interpolate(InterpolateError::TooLarge { .. })
                | LoadError::Interpolate(InterpolateError::TooMuchWork { .. })
        ),
        "{msg}"
    );
    assert!(msg.contains("filter.d/tags.conf:"), "{msg}");
}

#[test]
fn a_bomb_in_an_imported_jail_is_an_error_naming_the_jail_file_and_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut jail = laughs("ha").replace("[s]\nbomb = %(l9)s\nsmall = %(l2)s\n", "");
    jail.push_str(
        "[sshd]\nenabled = true\nfilter = sshd\nlogpath = /var/log/auth.log\nmaxretry = %(l9)s\n",
    );
    write(tmp.path(), "jail.conf", &jail);
    write(
        tmp.path(),
        "filter.d/sshd.conf",
        "[Definition]\nfailregex = ^fail <HOST>$\n",
    );
    let dir = tmp.path().to_path_buf();
    let import = finishes("importing", move || {
        Import::load(&dir, &ImportOptions::default()).expect("the import itself")
    });
    // The jail is left out, as Fail2Ban would skip it, with the reason in the report.
    assert!(import.jails.is_empty());
    let report = import.report.to_string();
    assert!(
        report.contains("jail left out")
            && report.contains("jail.conf:16: maxretry: interpolation expands beyond"),
        "{report}"
    );
}

/// Level k has two files, each including both files of level k+1: Fail2Ban's include list
/// doubles per level (2^30 entries for 30 levels); here each file is read and merged once.
#[test]
fn a_thirty_level_diamond_of_includes_reads_each_file_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let levels = 30;
    let inc = |k: usize| format!("before = l{k}a.conf\n         l{k}b.conf\n");
    write(
        d,
        "top.conf",
        &format!("[INCLUDES]\n{}[s]\ntop = 1\n", inc(1)),
    );
    for k in 1..=levels {
        for side in ["a", "b"] {
            let includes = if k < levels {
                format!("[INCLUDES]\n{}", inc(k + 1))
            } else {
                String::new()
            };
            write(
                d,
                &format!("l{k}{side}.conf"),
                &format!("{includes}[s]\nv = l{k}{side}\nlevel{k} = {side}\n"),
            );
        }
    }
    let top = d.join("top.conf");
    let set = finishes("reading the diamond", move || {
        ConfigSet::read_files(&[top]).expect("load")
    });
    assert_eq!(set.files().len(), 2 * levels + 1);
    let mut seen = std::collections::HashSet::new();
    assert!(
        set.files().iter().all(|f| seen.insert(f.clone())),
        "a file merged twice"
    );
    // Fail2Ban's order is l30a l30b l29a l30a l30b l29b … l1b top: the last file setting a
    // key wins, and that is the same here.
    let get = |k: &str| set.get_text("s", k, &Vars::new()).expect("ok");
    assert_eq!(get("v").as_deref(), Some("l1b"));
    assert_eq!(get("level30").as_deref(), Some("b"));
    assert_eq!(get("level1").as_deref(), Some("b"));
    assert_eq!(get("top").as_deref(), Some("1"));
}

#[test]
fn includes_nest_boundedly_with_an_error_naming_the_include_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let depth = MAX_INCLUDE_DEPTH + 5;
    for k in 0..depth {
        write(
            d,
            &format!("c{k}.conf"),
            &format!("[s]\nk{k} = 1\n[INCLUDES]\nafter = c{}.conf\n", k + 1),
        );
    }
    write(d, &format!("c{depth}.conf"), "[s]\nend = 1\n");
    let e = ConfigSet::read_files(&[d.join("c0.conf")]).expect_err("too deep");
    assert!(matches!(e, LoadError::IncludeDepth { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "c{}.conf:4: includes nest deeper than 64",
            MAX_INCLUDE_DEPTH
        )),
        "{msg}"
    );
    // The limit itself is fine.
    write(d, &format!("c{}.conf", MAX_INCLUDE_DEPTH), "[s]\nend = 1\n");
    let set = ConfigSet::read_files(&[d.join("c0.conf")]).expect("at the limit");
    assert_eq!(set.files().len(), MAX_INCLUDE_DEPTH + 1);
}

//! The Fail2Ban file layer on real files: `.conf` / `.d` / `.local` order, includes relative
//! to the including file, include cycles, and errors that name file and line.

use std::path::Path;

use portcullis_fail2ban::{ConfigSet, FilterDef, LoadError, Vars};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn local_and_dropins_override_in_fail2ban_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "x.conf", "[s]\nv = conf\nonly_conf = 1\n");
    write(d, "x.d/1.conf", "[s]\nv = d-conf\n");
    write(d, "x.local", "[s]\nv = local\n");
    write(d, "x.d/2.local", "[s]\nv = d-local %(known/v)s\n");
    let set = ConfigSet::load(d, "x").expect("load");
    let names: Vec<String> = set
        .files()
        .iter()
        .map(|p| p.strip_prefix(d).expect("inside").display().to_string())
        .collect();
    assert_eq!(names, ["x.conf", "x.d/1.conf", "x.local", "x.d/2.local"]);
    let v = set.get("s", "v", &Vars::new()).expect("ok").expect("set");
    assert_eq!(v[0].text, "d-local local");
    assert!(v[0].origin.file.ends_with("x.d/2.local"));
    assert_eq!(
        set.get_text("s", "only_conf", &Vars::new())
            .expect("ok")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn includes_are_relative_to_the_including_file_and_ordered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(
        d,
        "main.conf",
        "[INCLUDES]\nbefore = sub/common.conf\nafter = late.conf\n[s]\nv = main\nw = %(base)s\n",
    );
    write(
        d,
        "sub/common.conf",
        "[INCLUDES]\nbefore = deeper.conf\n[DEFAULT]\nbase = common\n[s]\nv = common\n",
    );
    write(d, "sub/deeper.conf", "[s]\nu = deeper\n");
    write(d, "sub/common.local", "[DEFAULT]\nbase = common-local\n");
    write(d, "late.conf", "[s]\nv = late\n");
    let set = ConfigSet::read_files(&[d.join("main.conf")]).expect("load");
    let order: Vec<String> = set
        .files()
        .iter()
        .map(|p| p.strip_prefix(d).expect("inside").display().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "sub/deeper.conf",
            "sub/common.conf",
            "sub/common.local",
            "main.conf",
            "late.conf"
        ]
    );
    assert_eq!(
        set.get_text("s", "v", &Vars::new()).expect("ok").as_deref(),
        Some("late")
    );
    assert_eq!(
        set.get_text("s", "w", &Vars::new()).expect("ok").as_deref(),
        Some("common-local")
    );
    assert_eq!(
        set.get_text("s", "u", &Vars::new()).expect("ok").as_deref(),
        Some("deeper")
    );
    // A missing include is skipped, as Fail2Ban does.
    write(
        d,
        "m2.conf",
        "[INCLUDES]\nafter = nowhere.conf\n[s]\nv = 1\n",
    );
    assert!(ConfigSet::read_files(&[d.join("m2.conf")]).is_ok());
}

#[test]
fn include_cycles_are_errors_naming_the_files_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "a.conf", "[INCLUDES]\nbefore = b.conf\n[s]\nv = a\n");
    write(d, "b.conf", "[s]\nx = 1\n[INCLUDES]\nafter = c.conf\n");
    write(d, "c.conf", "[INCLUDES]\nbefore = ./a.conf\n");
    let e = ConfigSet::read_files(&[d.join("a.conf")]).expect_err("cycle");
    assert!(matches!(e, LoadError::IncludeCycle { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("c.conf:2: include cycle: "), "{msg}");
    for f in ["a.conf ->", "b.conf ->", "c.conf ->"] {
        assert!(msg.contains(f), "{msg}");
    }
    // Including oneself is a cycle too.
    write(d, "self.conf", "[INCLUDES]\nafter = self.conf\n");
    assert!(ConfigSet::read_files(&[d.join("self.conf")]).is_err());
}

#[test]
fn filter_errors_name_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(
        d,
        "filter.d/bad.conf",
        "[Definition]\nfailregex = ^ok <HOST>$\n    ^%(missing)s <HOST>$\n",
    );
    let e = FilterDef::load(d, "bad", &[]).expect_err("missing reference");
    let msg = e.to_string();
    assert!(
        msg.ends_with(
            "filter.d/bad.conf:3: failregex: bad interpolation: %(missing)s is not defined"
        ),
        "{msg}"
    );
    write(
        d,
        "filter.d/syntax.conf",
        "[Definition]\nfailregex = ^ok\nthis line has no delimiter\n",
    );
    let e = FilterDef::load(d, "syntax", &[]).expect_err("syntax");
    assert!(e.to_string().contains("filter.d/syntax.conf:3: "), "{e}");
    write(
        d,
        "filter.d/deep.conf",
        "[Definition]\na = %(b)s\nb = %(a)s\nfailregex = %(a)s\n",
    );
    let e = FilterDef::load(d, "deep", &[]).expect_err("depth");
    assert!(
        e.to_string()
            .contains("filter.d/deep.conf:4: failregex: interpolation nested deeper than 10"),
        "{e}"
    );
    assert!(matches!(
        FilterDef::load(d, "absent", &[]),
        Err(LoadError::NotFound { .. })
    ));
}

//! The Debian package (issue 14 item 1): `packaging/build-deb.sh` builds it (or
//! `PORTCULLIS_DEB` names one scripts/test.sh built), lintian finds no error in it, and
//! dpkg-deb shows the files, control fields, conffiles and maintainer scripts it must have.

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_config::ConfigDoc;
use portcullis_testkit::{require, run, which};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The package under test: `PORTCULLIS_DEB`, else a fresh build (release, so minutes).
fn deb() -> PathBuf {
    if let Some(p) = std::env::var_os("PORTCULLIS_DEB") {
        return PathBuf::from(p);
    }
    let out = run(Command::new("bash").arg(Path::new(ROOT).join("packaging/build-deb.sh")));
    PathBuf::from(
        out.lines()
            .last()
            .expect("build-deb.sh printed the .deb path")
            .trim(),
    )
}

#[test]
fn the_deb_is_lintian_clean_of_errors_and_holds_what_it_must() {
    let tools = ["dpkg-deb", "lintian"];
    let missing: Vec<_> = tools.iter().filter(|t| which(t).is_none()).collect();
    if !require(
        &format!("the .deb test needs {missing:?} installed"),
        missing.is_empty(),
    ) {
        return;
    }
    let deb = deb();
    assert!(
        deb.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("portcullis_") && n.ends_with(".deb")),
        "{}",
        deb.display()
    );

    // lintian: errors fail, warnings are printed for the report.
    let lint = Command::new("lintian")
        .args(["--no-tag-display-limit", "--fail-on", "none"])
        .arg(&deb)
        .output()
        .expect("run lintian");
    let lint = String::from_utf8_lossy(&lint.stdout).into_owned();
    eprintln!("lintian:\n{lint}");
    let errors: Vec<_> = lint.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));

    // Files.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let has = |path: &str| {
        listing
            .lines()
            .any(|l| l.split_whitespace().nth(5) == Some(path))
    };
    for path in [
        "./usr/sbin/portcullis",
        "./usr/lib/systemd/system/portcullis.service",
        "./etc/portcullis/portcullis.toml",
        "./etc/portcullis/conf.d/",
        "./etc/portcullis/conf.d/README",
        "./usr/share/man/man8/portcullis.8.gz",
        "./usr/share/man/man5/portcullis.toml.5.gz",
        "./usr/share/bash-completion/completions/portcullis",
        "./usr/share/zsh/vendor-completions/_portcullis",
        "./usr/share/fish/vendor_completions.d/portcullis.fish",
        "./usr/share/doc/portcullis/copyright",
    ] {
        assert!(has(path), "{path} missing from the package:\n{listing}");
    }
    assert!(
        listing
            .lines()
            .any(
                |l| (l.starts_with("-rwxr-xr-x root/root") || l.starts_with("-rwxr-xr-x 0/0"))
                    && l.ends_with("./usr/sbin/portcullis")
            ),
        "{listing}"
    );
    assert!(!has("./var/lib/portcullis/"), "state is made by postinst");

    // Control fields.
    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name));
    assert_eq!(field("Package").trim(), "portcullis");
    let depends = field("Depends");
    assert!(depends.contains("libc6"), "{depends}");
    assert!(
        depends.contains("nftables | ipset") && depends.contains("nftables | iptables"),
        "{depends}"
    );
    assert_eq!(field("Suggests").trim(), "fail2ban");
    assert_eq!(field("Conflicts").trim(), "", "coexistence is possible");
    assert_eq!(field("Breaks").trim(), "");

    // Control area: conffiles and the debhelper-style scripts.
    let dir = tempfile::tempdir().expect("tempdir");
    let ctrl = dir.path().join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctrl));
    let read = |name: &str| std::fs::read_to_string(ctrl.join(name)).expect(name);
    let conffiles: Vec<_> = read("conffiles").lines().map(str::to_owned).collect();
    assert!(
        conffiles.contains(&"/etc/portcullis/portcullis.toml".to_owned()),
        "{conffiles:?}"
    );
    assert!(
        conffiles.contains(&"/etc/portcullis/conf.d/README".to_owned()),
        "{conffiles:?}"
    );
    let postinst = read("postinst");
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    assert!(postinst.contains("deb-systemd-helper"), "{postinst}");
    assert!(
        postinst.contains("_dh_action=restart")
            && postinst.contains("deb-systemd-invoke $_dh_action portcullis.service"),
        "upgrade restarts: {postinst}"
    );
    assert!(postinst.contains("install -d -m 0700"), "{postinst}");
    let prerm = read("prerm");
    assert!(!prerm.contains("#DEBHELPER#"), "{prerm}");
    // Stopped on removal only: an upgrade leaves it running until postinst restarts it.
    let stop = prerm
        .find("deb-systemd-invoke stop portcullis.service")
        .expect("prerm stops the unit");
    let guard = prerm[..stop]
        .rfind("if ")
        .map(|at| &prerm[at..stop])
        .unwrap_or_default();
    assert!(guard.contains(r#""$1" = remove"#), "{prerm}");
    let postrm = read("postrm");
    assert!(postrm.contains("rm -rf /var/lib/portcullis"), "{postrm}");
    // The state directory is deleted in the purge branch only.
    let purge = postrm.find("purge)").expect("a purge branch");
    let rm = postrm.find("rm -rf /var/lib/portcullis").expect("rm");
    let next_branch = postrm[purge..].find(";;").map(|i| i + purge);
    assert!(
        rm > purge && next_branch.is_some_and(|end| rm < end),
        "{postrm}"
    );

    // The files themselves: the conffile is today's default, commented; the man page
    // describes every subcommand the binary has.
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let conffile =
        std::fs::read_to_string(root.join("etc/portcullis/portcullis.toml")).expect("conffile");
    assert_eq!(conffile, ConfigDoc::embedded().commented_conffile());
    let help = run(Command::new(root.join("usr/sbin/portcullis")).arg("--help"));
    let man8 = run(Command::new("zcat").arg(root.join("usr/share/man/man8/portcullis.8.gz")));
    let subcommands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // "  name  about"; wrapped about lines are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(subcommands.len() >= 10, "{help}");
    for sub in subcommands {
        assert!(
            man8.contains(&format!(".SS \"portcullis {sub}\"")),
            "portcullis(8) lacks {sub}"
        );
    }
    let man5 = run(Command::new("zcat").arg(root.join("usr/share/man/man5/portcullis.toml.5.gz")));
    for (section, key, _) in ConfigDoc::embedded().keys() {
        assert!(
            man5.contains(&format!("[{section}]"))
                && man5.contains(&format!("\\fB{}\\fR = ", key.replace('-', "\\-"))),
            "portcullis.toml(5) lacks {section}.{key}"
        );
    }
}

"""Tests for nbtrack.capture.gitinfo against real repositories made with the git binary."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from nbtrack.capture.gitinfo import git_info, strip_url_credentials

# The tests build real repositories; CI has git, and a machine without it should fail here.
assert shutil.which("git"), "the git binary is needed: apt-get install git"


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch, tmp_path_factory):
    # The user's and system's git config must not change what these repositories look like.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "nbtrack tests")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "tests@nbtrack.invalid")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(path: Path, *, commits: int = 1) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(commits):
        (path / "train.py").write_text(f"print({i})\n")
        git(path, "add", "train.py")
        git(path, "commit", "-q", "-m", f"commit {i}")
    return path


def test_clean_repo(tmp_path):
    repo = make_repo(tmp_path / "repo")
    info = git_info(repo)
    assert info == {
        "root": str(repo.resolve()),
        "commit": git(repo, "rev-parse", "HEAD"),
        "branch": "main",
        "remote": None,
        "dirty": False,
    }


def test_path_inside_repo_file_and_subfolder(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "notebooks" / "deep").mkdir(parents=True)
    nb = repo / "notebooks" / "deep" / "exp.ipynb"
    nb.write_text("{}")
    for target in (nb, nb.parent, str(nb)):
        info = git_info(target)
        assert info["root"] == str(repo.resolve())
        assert info["commit"] == git(repo, "rev-parse", "HEAD")


def test_dirty_repo_tracked_change(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "train.py").write_text("print('changed')\n")
    assert git_info(repo)["dirty"] is True


def test_staged_change_is_dirty(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    assert git_info(repo)["dirty"] is True


def test_untracked_files_do_not_make_it_dirty(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "scratch.txt").write_text("notes\n")
    assert git_info(repo)["dirty"] is False


def test_detached_head(tmp_path):
    repo = make_repo(tmp_path / "repo", commits=2)
    first = git(repo, "rev-parse", "HEAD~1")
    git(repo, "checkout", "-q", "--detach", first)
    info = git_info(repo)
    assert info["branch"] is None
    assert info["commit"] == first
    assert info["dirty"] is False


def test_packed_refs(tmp_path):
    repo = make_repo(tmp_path / "repo", commits=2)
    git(repo, "checkout", "-q", "-b", "feature/x")
    git(repo, "tag", "-a", "v1", "-m", "annotated tag gives a peeled ^ line")
    git(repo, "pack-refs", "--all")
    # Proves the packed path is exercised: the loose ref file is gone.
    assert not (repo / ".git" / "refs" / "heads" / "feature" / "x").exists()
    assert "^" in (repo / ".git" / "packed-refs").read_text()
    info = git_info(repo)
    assert info["branch"] == "feature/x"
    assert info["commit"] == git(repo, "rev-parse", "HEAD")


def test_commit_and_branch_read_without_git_binary(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    expected = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    info = git_info(repo)
    assert info["commit"] == expected
    assert info["branch"] == "main"
    assert info["dirty"] is None
    assert "git executable not found" in info["error"]


def test_not_a_repo(tmp_path):
    plain = tmp_path / "plain" / "folder"
    plain.mkdir(parents=True)
    assert git_info(plain) == {}
    assert git_info(plain / "missing-file.ipynb") == {}


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://alice:s3cret-pw@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://ghp_tokenvalue123@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("http://user@example.com:8080/r.git", "http://example.com:8080/r.git"),
        ("ssh://git:pw123@host.example/r.git", "ssh://git@host.example/r.git"),
        ("ssh://git@host.example/r.git", "ssh://git@host.example/r.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
    ],
)
def test_strip_url_credentials(url, expected):
    assert strip_url_credentials(url) == expected


def test_remote_credentials_stripped(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "https://alice:s3cret-pw@github.com/org/repo.git")
    git(repo, "remote", "add", "upstream", "https://other.example/x.git")
    info = git_info(repo)
    assert info["remote"] == "https://github.com/org/repo.git"
    text = json.dumps(info)
    assert "s3cret-pw" not in text and "alice" not in text


def test_remote_token_stripped(tmp_path):
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "https://ghp_abcdef123456@github.com/org/repo.git")
    info = git_info(repo)
    assert info["remote"] == "https://github.com/org/repo.git"
    assert "ghp_abcdef123456" not in json.dumps(info)


def test_corrupt_head_gives_error_without_raising(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / ".git" / "HEAD").write_text("this is not a ref\n")
    info = git_info(repo)
    assert "error" in info
    assert "HEAD" in info["error"]
    assert "\n" not in info["error"]
    assert "commit" not in info


def test_corrupt_ref_gives_error(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / ".git" / "refs" / "heads" / "main").write_text("garbage\n")
    info = git_info(repo)
    assert "error" in info and "refs/heads/main" in info["error"]


def test_bad_dotgit_file_gives_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / ".git").write_text("gitdir: /nonexistent/nbtrack/gitdir\n")
    info = git_info(folder)
    assert "error" in info and "missing git dir" in info["error"]


def test_git_status_timeout_is_an_error(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    expected = git(repo, "rev-parse", "HEAD")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_git = fake_bin / "git"
    fake_git.write_text("#!/bin/sh\nsleep 5\n")
    fake_git.chmod(fake_git.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    info = git_info(repo, timeout=0.3)
    assert "timed out" in info["error"]
    assert info["dirty"] is None
    assert info["commit"] == expected


def test_git_failure_is_one_line_error(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_git = fake_bin / "git"
    fake_git.write_text("#!/bin/sh\necho 'fatal: something broke' >&2\necho more >&2\nexit 128\n")
    fake_git.chmod(fake_git.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    info = git_info(repo)
    assert info["error"] == "git status failed: fatal: something broke"


def test_unborn_branch(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    info = git_info(repo)
    assert info["commit"] is None
    assert info["branch"] == "main"
    assert "error" not in info


def test_worktree(tmp_path):
    repo = make_repo(tmp_path / "repo")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    (wt / "train.py").write_text("print('wt edit')\n")
    info = git_info(wt)
    assert (wt / ".git").is_file()
    assert info["root"] == str(wt.resolve())
    assert info["branch"] == "feature"
    assert info["commit"] == git(wt, "rev-parse", "HEAD")
    assert info["dirty"] is True
    # The main checkout is unaffected.
    assert git_info(repo)["branch"] == "main"


def test_submodule(tmp_path):
    lib = make_repo(tmp_path / "lib", commits=2)
    outer = make_repo(tmp_path / "outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    sub = outer / "vendor" / "lib"
    assert (sub / ".git").is_file()
    info = git_info(sub / "train.py")
    assert info["root"] == str(sub.resolve())
    assert info["commit"] == git(lib, "rev-parse", "HEAD")
    assert "error" not in info


def test_git_dir_env_does_not_redirect_status(tmp_path, monkeypatch):
    clean = make_repo(tmp_path / "clean")
    other = make_repo(tmp_path / "other")
    (other / "train.py").write_text("dirty\n")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    assert git_info(clean)["dirty"] is False

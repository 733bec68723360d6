"""Checking a catalogue against the pack: named banners, signals, languages."""

from __future__ import annotations

from pathlib import Path

from chatguard.banner_files import load_catalogue
from chatguard.banner_lint import check_against_pack, named_banners
from chatguard.policy.rules import load_policy

Pack = tuple[Path, Path]


def test_a_fitting_catalogue_has_no_problems(test_pack: Pack) -> None:
    policy = load_policy(test_pack[0])
    assert check_against_pack(load_catalogue(test_pack[1]), policy) == []
    named = named_banners(policy)
    assert sorted(named) == ["deterrence_image_request", "off_platform_warning", "pi_share_confirm"]
    assert named["pi_share_confirm"].startswith(str(test_pack[0] / "en" / "rules.yaml") + ":")


def test_each_misfit_is_one_line_naming_file_and_line(test_pack: Pack) -> None:
    policies, banners = test_pack
    (banners / "more.yaml").write_text(
        "banners:\n"
        "  - id: meetings\n"
        "    trigger: {signals: [meeting, isolation]}\n"
        "    text: {en: Careful., es: Cuidado.}\n",
        encoding="utf-8",
    )
    spanish = (policies / "en" / "rules.yaml").read_text(encoding="utf-8")
    spanish = spanish.replace("language: en", "language: es").replace("id: t.", "id: t_es.")
    (policies / "es").mkdir()
    (policies / "es" / "rules.yaml").write_text(spanish, encoding="utf-8")
    problems = check_against_pack(load_catalogue(banners), load_policy(policies))
    more = banners / "more.yaml"
    test = banners / "test.yaml"
    assert f"{more}:2: meetings: no rule of the pack detects signal 'meeting'" in problems
    assert (
        f"{test}:8: pi_share_confirm: `text` has no text in the pack's language(s) es" in problems
    )
    # off_platform_warning has Spanish; meetings too.
    assert not [p for p in problems if "off_platform_warning" in p or "meetings: `text`" in p]

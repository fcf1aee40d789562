"""Survey questions from role options, and AWX's rules for a survey spec."""
from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import awx_survey as s


@pytest.mark.parametrize(("spec", "expected"), [
    ({"type": "str", "required": True, "description": ["Image tag to deploy (the version).", "More."]},
     {"type": "text", "required": True, "min": 1, "max": 1024, "question_name": "Image tag to deploy (the version)"}),
    ({"type": "str", "choices": ["custom", "directory"], "default": "custom", "description": "Format."},
     {"type": "multiplechoice", "choices": ["custom", "directory"], "default": "custom"}),
    ({"type": "bool", "default": False, "description": "Verify the set."},
     {"type": "multiplechoice", "choices": ["true", "false"], "default": "false"}),
    ({"type": "int", "default": 2, "description": "Jobs."}, {"type": "integer", "default": 2}),
    ({"type": "float", "default": 80, "description": "Percent."}, {"type": "float", "default": 80.0}),
    ({"type": "list", "elements": "str", "choices": ["full", "schema"], "default": ["full", "schema"],
      "description": "Parts."}, {"type": "multiselect", "default": "full\nschema"}),
    ({"type": "str", "no_log": True, "description": "A secret."}, {"type": "password"}),
    # A default computed from the inventory at run time is no answer to offer.
    ({"type": "str", "default": "{{ rollback_to_version | default('') }}", "description": "Version."}, {"type": "text"}),
])
def test_option_types_become_question_types(spec, expected):
    question = s.survey_question("an_option", spec)
    assert {key: question.get(key) for key in expected} == expected
    assert s.survey_problems(s.survey_spec("t", "d", [question])) == []
    if "{{" in str(spec.get("default")):
        assert "default" not in question


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "dict"}, "of type dict cannot be a survey question"),
    ({"type": "list", "elements": "str"}, "of type list without choices cannot be a survey question"),
])
def test_options_a_survey_cannot_carry_are_refused_by_name(spec, message):
    with pytest.raises(s.SurveyError, match=f"option 'an_option' {message}"):
        s.survey_question("an_option", spec)


def test_the_playbook_may_make_an_optional_option_required():
    assert s.survey_question("ticket", {"type": "str", "default": ""}, required=True)["required"] is True


def test_markup_is_plain_text():
    text = s.plain_text(["Runs M(streamops.maintenance.blue_green_deploy) with",
                         "O(streamops.maintenance.blue_green_deploy#module:state=rolled_back); see C(docs/awx.md),",
                         "L(the guide,https://example.invalid) and V(true)."])
    assert text == "Runs streamops.maintenance.blue_green_deploy with state=rolled_back; see docs/awx.md, the guide and true."


def test_find_option_names_the_roles_it_searched():
    with pytest.raises(s.SurveyError, match="'missing' is not an option of role a, role b"):
        s.find_option("missing", [("role a", {"x": {}}), ("role b", {})])


@pytest.mark.parametrize(("spec", "problem"), [
    ({"name": "t", "description": "d", "spec": []}, "doesn't contain any items"),
    ({"name": "t", "spec": [{}]}, "field 'description' is missing"),
    ({"name": "t", "description": "d", "spec": [{"type": "text", "question_name": "q", "variable": "v"}]},
     "'required' is missing"),
    ({"name": "t", "description": "d", "spec": [{"type": "text", "question_name": "q", "variable": "v", "required": False},
                                                {"type": "text", "question_name": "q", "variable": "v", "required": False}]},
     "variable 'v' is asked twice"),
    ({"name": "t", "description": "d", "spec": [{"type": "multiplechoice", "question_name": "q", "variable": "v",
                                                 "required": False, "choices": ["a"], "default": "b"}]},
     "not one of the choices"),
    ({"name": "t", "description": "d", "spec": [{"type": "integer", "question_name": "q", "variable": "v",
                                                 "required": False, "default": "2"}]}, "does not fit type integer"),
    ({"name": "t", "description": "d", "spec": [{"type": "text", "question_name": "q", "variable": "v",
                                                 "required": False, "default": "$encrypted$"}]}, "$encrypted$"),
])
def test_awx_rules_for_a_survey_spec(spec, problem):
    assert any(problem in found for found in s.survey_problems(spec)), s.survey_problems(spec)

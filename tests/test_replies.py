"""The deterministic reader: what people type at a review step becomes typed edits, no model."""

from __future__ import annotations

import pytest

from agent.graph.replies import (
    choice_schema,
    choice_to_reading,
    read_reply,
    says_just_go,
    suggestions,
)
from agent.spec import DatasetSpec, apply_edits, make_spec, spec_diff

REVIEWS = make_spec(
    {
        "description": "Customer reviews for a shop.",
        "labels": [
            {"name": "positive", "definition": "The customer is satisfied."},
            {"name": "negative", "definition": "The customer is unhappy."},
            {"name": "neutral", "definition": "Mixed or factual."},
        ],
        "size": 100,
    }
)
CHAT = make_spec(
    {
        "task": "chat",
        "description": "A bank's support assistant.",
        "chat": {"system_prompt": "You help the bank's customers.", "turns": 1},
    }
)


def edits(text: str, spec: DatasetSpec = REVIEWS, stage: str = "sample") -> list[dict]:
    r = read_reply(text, spec, stage)
    assert r is not None and r.kind == "edit", (text, r)
    return [e.model_dump(exclude_none=True) for e in r.edits]


def diff(text: str, spec: DatasetSpec = REVIEWS, stage: str = "sample") -> list[str]:
    r = read_reply(text, spec, stage)
    assert r is not None, text
    return spec_diff(spec, apply_edits(spec, r.edits, max_rows=10_000))


@pytest.mark.parametrize(
    "text",
    [
        "make it more negative reviews",
        "I want more negative reviews please",
        "more negative ones",
        "mai multe recenzii negative",
        "vreau mai multe negative, te rog",
        "Mai multe recenzii negative!",
    ],
)
def test_more_of_a_label_in_english_and_romanian(text: str) -> None:
    assert diff(text) == [
        "~ mix positive: 33 % → 25 %",
        "~ mix negative: 33 % → 50 %",
        "~ mix neutral: 33 % → 25 %",
    ]


def test_the_issue_s_own_examples() -> None:
    assert edits("change the labels to positive, negative and neutral, with 60% negative") == [
        {"op": "set_label_share", "label": "negative", "share": 0.6}
    ]
    r = read_reply("generează 20", REVIEWS, "sample")
    assert r is not None and (r.kind, r.rows) == ("generate", 20)
    r = read_reply("generează doar 20", REVIEWS, "sample")
    assert r is not None and (r.kind, r.rows) == ("generate", 20)
    assert edits("în limba română", stage="contract") == [
        {"op": "set_language", "value": "Romanian"}
    ]


def test_generate_n_at_the_contract_step_sets_the_size_without_starting_a_run() -> None:
    assert edits("generate 50", stage="contract") == [{"op": "set_size", "number": 50}]


def test_changing_the_label_set_adds_then_removes() -> None:
    out = edits("change the labels to spam and ham")
    assert [e["op"] for e in out] == [
        "add_label",
        "add_label",
        "remove_label",
        "remove_label",
        "remove_label",
    ]
    new = apply_edits(
        REVIEWS, read_reply("labels: joy, anger, fear", REVIEWS, "sample").edits, max_rows=100
    )  # type: ignore[union-attr]
    assert new.label_names == ["joy", "anger", "fear"]


def test_labels_added_with_and_without_a_definition() -> None:
    assert edits("add a label shipping: complaints about delivery", stage="contract") == [
        {"op": "add_label", "label": "shipping", "definition": "Complaints about delivery."}
    ]
    assert edits("add a label for shipping problems") == [
        {"op": "add_label", "label": "shipping-problems"}
    ]
    assert edits("add a mixed label") == [{"op": "add_label", "label": "mixed"}]
    assert edits("adaugă o etichetă livrare") == [{"op": "add_label", "label": "livrare"}]


def test_drop_rename_and_shares() -> None:
    assert edits("drop neutral") == [{"op": "remove_label", "label": "neutral"}]
    assert edits("elimină eticheta neutral") == [{"op": "remove_label", "label": "neutral"}]
    assert edits("fără neutre") == [{"op": "remove_label", "label": "neutral"}]
    assert edits("rename neutral to mixed") == [
        {"op": "rename_label", "label": "neutral", "new_name": "mixed"}
    ]
    assert edits("redenumește neutral în mixt")[0]["new_name"] == "mixt"
    assert edits("negative la 50 la sută") == [
        {"op": "set_label_share", "label": "negative", "share": 0.5}
    ]
    assert edits("half negative") == [{"op": "set_label_share", "label": "negative", "share": 0.5}]
    assert edits("mai puține pozitive") == [{"op": "less_of_label", "label": "positive"}]


def test_length_steps_one_band_from_where_it_is() -> None:
    assert edits("shorter texts") == [{"op": "set_length", "value": "short"}]
    assert edits("texte mai scurte") == [{"op": "set_length", "value": "short"}]
    long = REVIEWS.model_copy(update={"style": REVIEWS.style.model_copy(update={"length": "long"})})
    assert edits("shorter please", spec=long) == [{"op": "set_length", "value": "medium"}]


def test_size_topic_tone_and_multi_label() -> None:
    assert edits("vreau 50 de recenzii") == [{"op": "set_size", "number": 50}]
    assert edits("I need 1,000 examples") == [{"op": "set_size", "number": 1000}]
    assert edits("more about electronics") == [{"op": "add_topic", "value": "electronics"}]
    assert edits("mai mult despre electronice") == [{"op": "add_topic", "value": "electronice"}]
    assert edits("make it sound angrier") == [{"op": "set_tone", "value": "angry"}]
    assert edits("un ton mai formal") == [{"op": "set_tone", "value": "formal"}]
    assert edits("multi-label please") == [{"op": "set_multi_label", "value": "yes"}]
    assert edits("make the texts longer and more about shoes") == [
        {"op": "set_length", "value": "long"},
        {"op": "add_topic", "value": "shoes"},
    ]


def test_chat_refinements() -> None:
    assert edits("3 turns", CHAT) == [{"op": "set_turns", "number": 3}]
    assert edits("3 replici", CHAT) == [{"op": "set_turns", "number": 3}]
    assert edits("shorter answers", CHAT) == [{"op": "set_length", "value": "short"}]
    assert edits("always ask for the account number", CHAT)[0]["op"] == "add_rule"
    assert edits("mai prietenos", CHAT) == [{"op": "set_answer_style", "value": "friendly"}]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("yes", "approve"),
        ("da", "approve"),
        ("Looks good!", "approve"),
        ("perfect, generate all", "approve"),
        ("arată bine, mergi mai departe", "approve"),
        ("just go", "approve"),
        ("dă-i drumul", "approve"),
        ("cancel", "cancel"),
        ("anulează", "cancel"),
        ("what does neutral mean?", "question"),
        ("ce înseamnă neutral?", "question"),
    ],
)
def test_approvals_cancels_and_questions(text: str, kind: str) -> None:
    r = read_reply(text, REVIEWS, "sample")
    assert r is not None and r.kind == kind


def test_yes_with_a_change_is_a_change_not_an_approval() -> None:
    assert edits("yes but shorter texts") == [{"op": "set_length", "value": "short"}]


def test_what_the_tables_cannot_read_goes_to_the_model() -> None:
    assert read_reply("please tweak the vibe somehow", REVIEWS, "sample") is None
    assert read_reply("", REVIEWS, "sample") is None


def test_words_left_unread_are_reported() -> None:
    r = read_reply(
        "more negative reviews and also something about the weather forecast", REVIEWS, "sample"
    )
    assert r is not None and r.edits[0].op == "more_of_label"
    assert "weather" in r.leftover


def test_just_go_at_the_end_of_a_description() -> None:
    assert says_just_go("Customer reviews for a shop, just go")
    assert says_just_go("dă-i drumul")
    assert not says_just_go("Customer reviews for any shop")


def test_suggestions_offer_what_the_words_could_mean_with_their_effect() -> None:
    offers = suggestions("negative", REVIEWS, 10_000)
    assert offers[0]["title"] == "more negative rows (negative 33 % → 50 %)"
    assert offers[0]["edits"] == [{"op": "more_of_label", "label": "negative"}]
    vague = suggestions("please tweak the vibe somehow", REVIEWS, 10_000)
    assert vague and all(o["edits"] for o in vague)


def test_the_model_chooses_the_label_from_the_contract_s_own_names() -> None:
    schema = choice_schema(REVIEWS)
    label = schema.model_json_schema()["properties"]["label"]
    assert set(label["enum"]) == {"positive", "negative", "neutral", "none"}
    with pytest.raises(ValueError):
        schema.model_validate({"op": "more_of_label", "label": "the-world"})
    choice = schema.model_validate({"op": "more_of_label", "label": "negative"})
    r = choice_to_reading(choice, REVIEWS, "sample")
    assert r.kind == "edit" and r.edits[0].label == "negative"
    assert "label" not in choice_schema(CHAT).model_json_schema()["properties"]
    empty = choice_to_reading(schema.model_validate({"op": "rename_label"}), REVIEWS, "sample")
    assert empty.kind == "edit" and not empty.edits  # nothing usable: said as not understood

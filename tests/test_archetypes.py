"""Dataset archetypes kept as data, and first proposals that start from them: a tiny model's
nonsense ("the-world" / "the-future", "customers" / "products" defined as themselves, language
"Roman") cannot reach the contract."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableLambda

from agent.graph import nodes
from agent.llm import use_model
from agent.schemas import archetype_choice_schema
from agent.spec import DatasetSpec, Label, make_spec
from agent.tasks import archetypes
from agent.tasks.chat import talk as chat_talk
from tests.conftest import ReviewWorld
from tests.fakes import ScriptedModel

REVIEWS = "A dataset covering customer reviews for an e-commerce website."
NEWS = "A dataset covering news articles about various topics."
REVIEWS_RO = (
    "Vreau un set de date cu recenzii ale clienților pentru un magazin online, în limba română."
)
BANK_RO = "a bank's support assistant, in Romanian"
NEWS_LABELS = {"world", "politics", "business", "technology", "science", "health", "sports"}


def nonsense(description: str) -> dict[str, Any]:
    """What SmolLM2-135M proposed for the seed descriptions (issue 12)."""
    if "news" in description:
        labels = [
            {"name": "the-world", "definition": "The world."},
            {"name": "the-future", "definition": "The future"},
        ]
    else:
        labels = [
            {"name": "customers", "definition": "Customers."},
            {"name": "products", "definition": "products"},
        ]
    return {
        "name": "the-dataset",
        "labels": labels,
        "language": "Roman",
        "size": 100,
        "topics": ["the world", "the future"],
    }


class Script:
    """A scripted model: `answers[kind]` is a dict or a function of the messages; calls are kept."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, list[BaseMessage]]] = []

    def __call__(self, kind: str, messages: list[BaseMessage]) -> Any:
        self.calls.append((kind, messages))
        answer = self.answers.get(kind, "not json")
        return answer(messages) if callable(answer) else answer

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]


async def run_node(node: Any, script: Script, *said: str, **state: Any) -> dict[str, Any]:
    """Call a graph node the way the graph does (in a runnable context) with the user's messages."""
    full = {"messages": [HumanMessage(content=s) for s in said], **state}  # or state's own
    with use_model(ScriptedModel(responder=script)):
        command = await RunnableLambda(node).ainvoke(
            full, config={"configurable": {"thread_id": "archetypes"}}
        )
    return command.update


def names(update: dict[str, Any]) -> list[str]:
    return [lb["name"] for lb in update["spec"]["labels"]]


# --- the library ---------------------------------------------------------------------------------


def test_every_archetype_loads_and_is_a_valid_contract() -> None:
    textcat, chat = archetypes.load("textcat"), archetypes.load("chat")
    assert len(textcat) >= 8 and len(chat) >= 5
    for arch in archetypes.load():
        spec = make_spec(arch.contract("A description.", language="Romanian", size=50))
        assert isinstance(spec, DatasetSpec) and spec.task == arch.task
        assert arch.strong or arch.keywords
        if arch.task == "textcat":
            assert len(spec.labels) >= 2 and all(lb.definition for lb in spec.labels)
            assert [lb.name for lb in spec.labels] == arch.label_names  # English names, kept as is
            assert archetypes.label_problems(spec.labels) == [], arch.id
        else:
            assert spec.chat is not None and spec.chat.system_prompt
            assert len(spec.chat.personas) >= 3 and len(spec.chat.intents) >= 3
            assert arch.i18n.get("ro", {}).get("system_prompt"), f"{arch.id} has no Romanian prompt"


def test_archetype_files_are_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "tasks/*/archetypes.toml" in pyproject["tool"]["setuptools"]["package-data"]["agent"]


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (REVIEWS, "sentiment"),
        (NEWS, "news-topic"),
        (REVIEWS_RO, "sentiment"),
        ("Vreau review-uri de produse", "sentiment"),
        ("Păreri despre restaurante", "sentiment"),
        ("Știri din presa românească", "news-topic"),
        ("Stiri din presa romaneasca", "news-topic"),  # accents optional
        ("Fake news detection: made-up versus real headlines", "misinformation"),
        ("Știri false și adevărate", "misinformation"),
        ("SMS messages for a spam filter", "spam"),
        ("Toxic comments from forums", "toxicity"),
        ("Toxic comments, multi-label: insult, threat, obscene", "toxicity-types"),
        ("Tweets labelled by emotion", "emotion"),
        ("Emoții în postări de pe rețele sociale", "emotion"),
        ("Support tickets routed to the right team", "support-ticket"),
        ("Tichete de suport pe departamente", "support-ticket"),
        ("Classify the intent of bank customers' messages", "banking-intent"),
        ("Clasificarea intențiilor clienților unui magazin online", "intent"),
        ("A language identification dataset", "language-id"),
        ("Trivia questions by question type", "question-type"),
        ("Product titles sorted into product categories", "product-category"),
        (BANK_RO, "banking-assistant"),
        ("I need conversations for a customer-support assistant of a bank", "banking-assistant"),
        ("Vreau conversații cu asistentul virtual al unei bănci", "banking-assistant"),
        ("A customer-support chatbot for an online clothing shop", "customer-support"),
        ("Tutoring dialogues for high-school maths", "tutor"),
        ("Dialoguri în care un profesor ajută elevii", "tutor"),
        ("Chats with a Python coding assistant", "coding-helper"),
        ("Un chatbot pentru o clinică medicală", "healthcare-info"),
        ("Conversații cu un asistent de călătorii", "travel-assistant"),
        ("A general-purpose assistant for everyday questions", "general-assistant"),
        ("Legal contract clauses by clause type", None),
    ],
)
def test_match_reads_english_and_romanian_keywords(description: str, expected: str | None) -> None:
    found = archetypes.match(description)
    assert (found.id if found else None) == expected


def test_match_can_be_limited_to_a_task() -> None:
    assert archetypes.match("bank customer messages", "textcat").id == "banking-intent"  # type: ignore[union-attr]
    assert archetypes.match("bank customer messages", "chat").id == "banking-assistant"  # type: ignore[union-attr]


def test_the_choice_schema_is_an_enum_of_the_ids() -> None:
    schema = archetype_choice_schema(archetypes.ids("textcat"))
    enum = schema.model_json_schema()["properties"]["archetype"]["enum"]
    assert enum == [*archetypes.ids("textcat"), "other"]
    assert schema is archetype_choice_schema(archetypes.ids("textcat"))  # built once


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ([("the-world", "The world."), ("the-future", "The future")], "is not a label"),
        ([("customers", "Customers."), ("products", "products")], "is not a label"),
        ([("happy-text", "Happy text."), ("sad-text", "A sad text")], "is defined as itself"),
        ([("ok", "x"), ("OK", "y")], "fewer than two labels"),
        ([("label-1", "First."), ("label-2", "Second.")], "is not a label"),
    ],
)
def test_nonsense_labels_are_named(labels: list[tuple[str, str]], problem: str) -> None:
    found = archetypes.label_problems([Label(name=n, definition=d) for n, d in labels])
    assert any(problem in p for p in found), found


def test_sensible_labels_pass_and_an_archetype_wants_its_own_kind() -> None:
    sentiment = archetypes.get("sentiment")
    good = [
        Label(name="positive", definition="Happy."),
        Label(name="negative", definition="Unhappy."),
        Label(name="other", definition="Neither."),
    ]
    assert archetypes.label_problems(good, archetype=sentiment) == []
    foreign = [
        Label(name="sports", definition="Matches."),
        Label(name="politics", definition="Votes."),
    ]
    assert archetypes.label_problems(foreign) == []
    assert archetypes.label_problems(foreign, archetype=sentiment) == [
        "not sentiment of reviews labels"
    ]


def test_labels_seen_from_smollm2_that_are_refused() -> None:
    toxic = [("toxic", "Rude."), ("non-toxic", "Civil."), ("not-toxic", "civil, no insults")]
    spam = [("not-spam", "An unsolicited message."), ("friendly-saviors", "A friendly message.")]
    questions = [("person", "Who."), ("location", "Where."), ("curious", "Curious questions.")]
    for arch, labels, problem in [
        ("toxicity", toxic, "two labels mean the same"),
        ("question-type", questions, "“curious” is a tone or topic, not a label"),
        ("spam", spam, "not spam detection labels"),
    ]:
        found = archetypes.label_problems(
            [Label(name=n, definition=d) for n, d in labels], archetype=archetypes.get(arch)
        )
        assert found == [problem]


async def test_a_system_prompt_that_copies_the_request_is_replaced() -> None:
    said = "Un asistent medical care răspunde la întrebări despre simptome, în română."

    def copy(messages: list[BaseMessage]) -> dict[str, Any]:
        return chat_nonsense(messages) | {"system_prompt": said + " Unas mai mult de și 2014."}

    update = await run_node(chat_talk.propose, Script(ChatProposal=copy), said, task="chat")
    prompt = update["spec"]["chat"]["system_prompt"]
    assert prompt.startswith("Ești un asistent de informare despre sănătate.") and "112" in prompt


# --- propose on a model that writes nonsense ----------------------------------------------------


async def test_seed_reviews_get_sentiment_labels_whatever_the_model_proposes() -> None:
    script = Script(Proposal=nonsense(REVIEWS))
    update = await run_node(nodes.propose, script, REVIEWS, task="textcat")
    assert names(update) == ["positive", "negative", "neutral"]
    spec = update["spec"]
    assert spec["language"] == "English" and spec["task"] == "textcat"
    assert "the world" not in spec["style"]["topics"]
    assert "used the standard sentiment of reviews labels" in update["messages"][0].content
    assert script.kinds() == ["Proposal"]  # a keyword match needs no choice call


async def test_seed_news_gets_news_topic_labels_whatever_the_model_proposes() -> None:
    update = await run_node(nodes.propose, Script(Proposal=nonsense(NEWS)), NEWS, task="textcat")
    assert len(set(names(update)) & NEWS_LABELS) >= 3
    assert not any(n.startswith("the-") for n in names(update))
    assert (
        update["spec"]["name"] == "news-articles-topics"
    )  # "the-dataset" is not about the request


async def test_the_model_is_shown_the_archetype_to_start_from() -> None:
    script = Script(Proposal=nonsense(NEWS))
    await run_node(nodes.propose, script, NEWS, task="textcat")
    (_, messages) = script.calls[0]
    assert "standard news topic dataset" in str(messages[0].content)
    standard = str(messages[0].content).split("<standard>")[1].split("</standard>")[0]
    assert "politics" in [lb["name"] for lb in json.loads(standard)["labels"]]


async def test_romanian_reviews_are_romanian_textcat_with_a_negative_label() -> None:
    update = await run_node(
        nodes.propose, Script(Proposal=nonsense(REVIEWS_RO)), REVIEWS_RO, task="textcat"
    )
    spec = update["spec"]
    assert spec["task"] == "textcat" and spec["language"] == "Romanian"  # not the model's "Roman"
    assert "negative" in names(update)
    assert spec["name"] == "recenzii-clientilor-magazin-online"


async def test_a_model_with_sensible_labels_keeps_them() -> None:
    world = ReviewWorld()
    update = await run_node(
        nodes.propose, Script(Proposal=world("Proposal", [])), REVIEWS, task="textcat"
    )
    assert names(update) == ["positive", "negative", "neutral"]
    assert "The customer is unhappy." in update["messages"][0].content
    assert update["spec"]["name"] == "ecommerce-reviews"
    assert update["spec"]["style"]["length"] == "short"  # the model's style, too


async def test_labels_the_user_listed_win() -> None:
    said = "Customer reviews of a shop, with labels: shipping, quality, price."
    update = await run_node(nodes.propose, Script(Proposal=nonsense(REVIEWS)), said, task="textcat")
    assert names(update) == ["shipping", "quality", "price"]


async def test_a_list_answering_a_question_about_labels_is_the_labels() -> None:
    messages = [
        HumanMessage(content=REVIEWS),
        AIMessage(content="Which labels do you need?"),
        HumanMessage(content="happy, angry and bored"),
    ]
    update = await run_node(
        nodes.propose, Script(Proposal=nonsense(REVIEWS)), task="textcat", messages=messages
    )
    assert names(update) == ["happy", "angry", "bored"]
    assert update["spec"]["labels"][0]["definition"].startswith("The reviewer is satisfied")


async def test_a_list_answering_another_question_is_not_labels() -> None:
    messages = [
        HumanMessage(content=REVIEWS),
        AIMessage(content="Which language should the data be in, and how much of it?"),
        HumanMessage(content="Romanian, 500 rows"),
    ]
    update = await run_node(
        nodes.propose, Script(Proposal=nonsense(REVIEWS)), task="textcat", messages=messages
    )
    spec = update["spec"]
    assert names(update) == ["positive", "negative", "neutral"]
    assert spec["language"] == "Romanian" and spec["size"] == 500


async def test_without_a_keyword_the_model_chooses_an_archetype_from_the_enum() -> None:
    said = "Messages people get on their phones, to filter the unwanted ones."
    script = Script(ArchetypeChoice={"archetype": "spam"}, Proposal=nonsense(said))
    update = await run_node(nodes.propose, script, said, task="textcat")
    assert names(update) == ["spam", "not-spam"]
    assert script.kinds() == ["ArchetypeChoice", "Proposal"]
    system = str(script.calls[0][1][0].content)
    assert "- sentiment:" in system and "→ other" in system  # the ids, with examples


async def test_other_falls_back_to_the_free_proposal() -> None:
    said = "Legal contract clauses by clause type."
    clauses = {
        "name": "legal-clauses",
        "labels": [
            {"name": "termination", "definition": "Ends the contract and its conditions."},
            {"name": "liability", "definition": "Limits who pays for damages."},
        ],
        "language": "English",
    }
    script = Script(ArchetypeChoice={"archetype": "other"}, Proposal=clauses)
    update = await run_node(nodes.propose, script, said, task="textcat")
    assert names(update) == ["termination", "liability"]


async def test_other_with_nonsense_labels_is_asked_again_then_explained() -> None:
    from agent.llm import LLMBadOutput

    said = "Legal contract clauses by clause type."
    script = Script(ArchetypeChoice={"archetype": "other"}, Proposal=nonsense(REVIEWS))
    with pytest.raises(LLMBadOutput, match="did not propose a usable contract"):
        await run_node(nodes.propose, script, said, task="textcat")
    assert script.kinds().count("Proposal") == 3


async def test_an_unreadable_choice_is_other() -> None:
    said = "Legal contract clauses by clause type."
    clauses = {
        "name": "legal-clauses",
        "labels": [
            {"name": "termination", "definition": "Ends the contract."},
            {"name": "liability", "definition": "Who pays for damages."},
        ],
    }
    update = await run_node(nodes.propose, Script(Proposal=clauses), said, task="textcat")
    assert names(update) == ["termination", "liability"]


# --- locked choices --------------------------------------------------------------------------------


async def test_locked_size_and_language_win_over_the_model_and_the_words() -> None:
    update = await run_node(
        nodes.propose,
        Script(Proposal=nonsense(REVIEWS_RO) | {"size": 5000}),
        REVIEWS_RO + " 300 de recenzii.",
        task="textcat",
        locked={"size": 42, "language": "French"},
    )
    assert update["spec"]["size"] == 42 and update["spec"]["language"] == "French"


async def test_a_size_in_the_users_words_wins_over_the_model() -> None:
    update = await run_node(
        nodes.propose,
        Script(Proposal=nonsense(REVIEWS) | {"size": 7}),
        "Customer reviews for a shop, 300 rows.",
        task="textcat",
    )
    assert update["spec"]["size"] == 300


async def test_a_locked_task_wins_over_the_state() -> None:
    update = await run_node(
        nodes.propose,
        Script(Proposal=nonsense(REVIEWS)),
        "shop reviews",
        task="chat",
        locked={"task": "textcat"},
    )
    assert update["spec"]["task"] == "textcat"


# --- chat ------------------------------------------------------------------------------------------


def chat_nonsense(messages: list[BaseMessage]) -> dict[str, Any]:
    return {
        "name": "the-dataset",
        "system_prompt": "Roman",
        "turns": 1,
        "personas": ["user"],
        "intents": ["question"],
        "topics": ["the world"],
        "language": "Roman",
    }


async def test_a_banks_support_assistant_in_romanian() -> None:
    update = await run_node(
        chat_talk.propose, Script(ChatProposal=chat_nonsense), BANK_RO, task="chat"
    )
    spec = update["spec"]
    assert spec["task"] == "chat" and spec["language"] == "Romanian"
    chat = spec["chat"]
    assert chat["system_prompt"].startswith("Ești asistentul pentru clienți al unei bănci.")
    assert "PIN" in chat["system_prompt"]  # the archetype's rules
    assert chat["turns"] == archetypes.get("banking-assistant").turns
    assert len(chat["personas"]) >= 3 and "user" not in chat["personas"]
    assert spec["style"]["topics"] and "the world" not in spec["style"]["topics"]


async def test_through_propose_a_chat_task_is_a_chat_contract() -> None:
    update = await run_node(nodes.propose, Script(ChatProposal=chat_nonsense), BANK_RO, task="chat")
    assert update["spec"]["task"] == "chat"


async def test_a_sensible_chat_proposal_is_kept_and_the_safety_rules_added() -> None:
    own = {
        "name": "clinic-assistant",
        "system_prompt": "You answer patients' questions for a family clinic, kindly and briefly.",
        "turns": 3,
        "personas": ["a new mother", "a diabetic pensioner"],
        "intents": ["book a visit", "ask about a symptom"],
        "topics": ["vaccines", "flu"],
        "answer_style": "kind and brief",
        "language": "English",
    }
    said = "Conversations with a medical clinic's assistant."
    update = await run_node(chat_talk.propose, Script(ChatProposal=own), said, task="chat")
    chat = update["spec"]["chat"]
    assert chat["system_prompt"].startswith(own["system_prompt"])
    assert "112" in chat["system_prompt"] and "Never diagnose" in chat["system_prompt"]
    assert chat["personas"] == own["personas"] and chat["turns"] == 3
    assert update["spec"]["style"]["topics"][:2] == ["vaccines", "flu"]


async def test_stated_turns_and_a_locked_size_win_in_chat() -> None:
    update = await run_node(
        chat_talk.propose,
        Script(ChatProposal=chat_nonsense),
        "Tutoring dialogues for maths, 4 turns each.",
        task="chat",
        locked={"size": 12},
    )
    spec = update["spec"]
    assert spec["chat"]["turns"] == 4 and spec["size"] == 12
    assert "tutor" in spec["chat"]["system_prompt"]

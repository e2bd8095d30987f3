"""Category suggestion: keywords of the directory, what past routing teaches, and accuracy on held-out items."""

from datetime import timedelta

import yaml

from bench.intake_data import accuracy, labelled_items, split
from duban.db import session_scope
from tasks.classify import Classifier, forget_classifier, suggest_category
from tasks.transitions import Actor, transition
from tests.factories import T0
from tests.intake_helpers import ROOT, new_item


def _directory_keywords() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    data = yaml.safe_load((ROOT / "duban" / "data" / "directory.yaml").read_text(encoding="utf-8"))
    leaves, parents = {}, {}
    for top in data["categories"]:
        for child in top.get("children", []):
            leaves[child["code"]] = child.get("keywords_zh", [])
            parents[child["code"]] = top.get("keywords_zh", [])
    return leaves, parents


def test_keywords_alone_suggest_the_category_with_confidence():
    leaves, parents = _directory_keywords()
    model = Classifier.build(keywords=leaves, parent_keywords=parents)
    fumes = model.suggest("楼下烧烤店的油烟很大")
    assert fumes.code == "city_appearance_life_services.cooking_fumes" and fumes.confidence > 0.9
    assert fumes.alternatives and all(p < fumes.confidence for _, p in fumes.alternatives)
    assert model.suggest("网约车司机绕路").code == "transportation.ride_hailing"
    assert model.suggest("12345 !!!") == model.suggest("") and model.suggest("").code is None


def test_past_routing_lifts_accuracy_on_held_out_items():
    leaves, parents = _directory_keywords()
    keywords_only = Classifier.build(keywords=leaves, parent_keywords=parents)
    training, held_out = split(list(labelled_items(leaves, per_category=30)))
    trained = Classifier.build(keywords=leaves, parent_keywords=parents, samples=training)
    assert trained.trained_on == len(training)
    assert accuracy(trained, held_out)[0] >= 0.95
    assert accuracy(keywords_only, held_out)[0] <= 0.7
    # Phrasings never seen in training: fewer are right, but the confident ones mostly are.
    unseen = list(labelled_items(leaves, per_category=6, first_situation=True, seed=99))
    trained = Classifier.build(keywords=leaves, parent_keywords=parents, samples=list(
        labelled_items(leaves, per_category=25, first_situation=False)))
    precision, coverage = accuracy(trained, unseen, min_confidence=0.5)
    assert precision >= 0.7 and coverage >= 0.4
    assert accuracy(trained, unseen)[0] >= 0.5


def test_routed_orders_in_the_database_teach_the_suggestion(directory):
    forget_classifier()
    phrase = "星光大道旁边那家店的排风扇彻夜轰鸣"
    with session_scope() as session:
        before = suggest_category(session=session, text=phrase)
    for n in range(12):
        order_id = new_item(content=f"{phrase}，第{n}次反映", at=T0 + timedelta(minutes=n),
                            category="city_appearance_life_services.noise")
        transition(order_id=order_id, action="dispatch", actor=Actor.system(), at=T0 + timedelta(minutes=n))
    new_item(content=f"{phrase}，未派单的不算", at=T0, category="transportation.taxis")
    forget_classifier()
    with session_scope() as session:
        after = suggest_category(session=session, text=phrase)
    assert after.code == "city_appearance_life_services.noise" and after.confidence >= 0.9
    assert before.code != after.code or before.confidence < after.confidence

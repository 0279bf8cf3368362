"""Simulated readers: a seeded population, consent shares and like probabilities."""

from __future__ import annotations

from guarded_rl.demo.corpus import TOPICS
from guarded_rl.demo.users import (
    LIKE_FAVOURITE,
    LIKE_OTHER,
    LIKE_UNREADABLE,
    Population,
    SimulatedFeedback,
    SimulatedUser,
)
from guarded_rl.records import Sample

PURPOSE = "training"


def _user(favourites: set[str]) -> SimulatedUser:
    return SimulatedUser("u-test", "A", frozenset(favourites), frozenset({PURPOSE}))


def _sample(i: int, subject: str, text: str, prompt: str = "") -> Sample:
    return Sample(f"c0-r{i}-k0", 0, subject, prompt, text, (0,), (1,))


def test_population_is_deterministic_for_a_seed() -> None:
    assert Population(50, seed=3).users == Population(50, seed=3).users
    assert Population(50, seed=3).users != Population(50, seed=4).users


def test_population_shape() -> None:
    pop = Population(2000, seed=0)
    assert len(pop) == 2000
    ids = [u.user_id for u in pop.users]
    assert len(set(ids)) == 2000
    assert SimulatedFeedback(pop).user(ids[5]) is pop.users[5]
    no_consent = sum(1 for u in pop.users if PURPOSE not in u.consents) / len(pop)
    assert 0.11 < no_consent < 0.19
    trained = [u for u in pop.users if PURPOSE in u.consents]
    no_fairness = sum(1 for u in trained if "fairness-analysis" not in u.consents) / len(trained)
    assert 0.06 < no_fairness < 0.14
    share_a = sum(1 for u in pop.users if u.group == "A") / len(pop)
    assert 0.55 < share_a < 0.65
    assert {u.group for u in pop.users} == {"A", "B"}
    assert all(u.favourite_topics <= set(TOPICS) for u in pop.users)


def test_groups_differ_in_interests() -> None:
    pop = Population(2000, seed=1)

    def share(group: str, topic: str) -> float:
        members = [u for u in pop.users if u.group == group]
        return sum(topic in u.favourite_topics for u in members) / len(members)

    assert share("A", "technology") > share("B", "technology") + 0.3
    assert share("B", "health") > share("A", "health") + 0.3


def test_readers_grant_all_purposes_none_or_all_but_fairness() -> None:
    pop = Population(300, seed=0)
    allowed = {
        frozenset(),
        frozenset({"training", "evaluation", "fairness-analysis"}),
        frozenset({"training", "evaluation"}),
    }
    assert {u.consents for u in pop.users} == allowed


def test_requests_are_seeded_distinct_readers() -> None:
    pop = Population(100, seed=2)
    first = pop.requests(5, 10, prompt="sports:")
    assert first == pop.requests(5, 10, prompt="sports:")
    assert first != pop.requests(6, 10, prompt="sports:")
    assert len({r.subject for r in first}) == 10
    assert all(r.prompt == "sports:" for r in first)
    assert all(r.group == SimulatedFeedback(pop).user(r.subject).group for r in first)
    assert len(pop.requests(0, 500)) == 100


def test_like_probability() -> None:
    user = _user({"sports"})
    assert user.like_probability("sports: Home team wins the final") == LIKE_FAVOURITE
    assert user.like_probability("travel: Airline adds summer flights") == LIKE_OTHER
    assert user.like_probability("no topic here") == LIKE_UNREADABLE
    assert user.like_probability("sports: Referee is a stupid idiot") == 0.0
    assert user.like_probability("sports: Fans vow to hurt the coach") == 0.0
    assert user.like_probability("sports: Write to coach at ana@example.com") == 0.0
    assert user.like_probability("sports: Call the club on 555-0134") == 0.0


def test_simulated_feedback_is_deterministic_and_follows_preferences() -> None:
    pop = Population(20, seed=0)
    subject = pop.users[0].user_id
    favourite = sorted(pop.users[0].favourite_topics or {"science"})[0]
    liked_text = f"{favourite}: Something happened today"
    insult = f"{favourite}: you stupid idiot"
    shown = [_sample(i, subject, liked_text) for i in range(200)]
    shown += [_sample(200 + i, subject, insult) for i in range(50)]
    ratings = SimulatedFeedback(pop, seed=1).rate(shown)
    assert ratings == SimulatedFeedback(pop, seed=1).rate(shown)
    assert ratings != SimulatedFeedback(pop, seed=2).rate(shown)
    assert set(ratings) == {s.sample_id for s in shown}
    assert set(ratings.values()) <= {0.0, 1.0}
    assert all(ratings[s.sample_id] == 0.0 for s in shown[200:])
    like_rate = sum(ratings[s.sample_id] for s in shown[:200]) / 200
    expected = pop.users[0].like_probability(liked_text)
    assert abs(like_rate - expected) < 0.1


def test_simulated_feedback_reads_prompt_and_text() -> None:
    pop = Population(5, seed=0)
    user = pop.users[0]
    topic = next(iter(user.favourite_topics), None) or "science"
    sample = _sample(0, user.user_id, "you idiot", prompt=f"{topic}:")
    assert SimulatedFeedback(pop).rate([sample]) == {sample.sample_id: 0.0}


def test_consents_name_readers_by_id_and_pseudonyms_map_back() -> None:
    pop = Population(300, seed=0)
    consents = pop.consents()
    assert set(consents) == {u.user_id for u in pop.users if u.consents}
    assert 0 < len(consents) < 300
    feedback = SimulatedFeedback(pop, pseudonym=lambda uid: "p-" + uid[::-1])
    user = pop.users[7]
    assert feedback.user("p-" + user.user_id[::-1]) is user
    assert {r.subject for r in pop.requests(0, 5)} <= {u.user_id for u in pop.users}

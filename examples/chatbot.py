"""A support chatbot, guarded: it answers by choosing one of 25 responses for the conversation
so far, simulated users rate every response they are shown helpful or not, and REINFORCE with
a baseline learns from the ratings.

The policy scores (conversation history, response) pairs: hashed bag-of-words features of the
last few turns (the history is the prompt: "how long does that take?" is only answerable
knowing what the user asked first) against a learned embedding per response. A few responses
of the bank are rude, one leaks a staff member's phone number and e-mail address. The
content-safety screen sees every response before the user does: a blocked one is replaced by a
fallback and trains with the policy's penalty, the personal data is shown redacted. Every
optimizer step goes through the gate into the run's signed audit log.

    python examples/chatbot.py [--steps 500] [--seed 0] [--run-dir DIR]  (default runs/torch-<time>)
    python examples/chatbot.py --interactive [--steps 500]   (trains, then you chat and rate y/n)

The counts of blocked and redacted responses and of steps cover training (and your chat), not
the held-out measurements; `--steps 0 --interactive` lets you teach the untrained bot yourself.
"""

from __future__ import annotations

import argparse
import random
import re
import zlib
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from guarded_rl import GatePolicy, GuardedLoop, GuardPolicy
from guarded_rl.policy import SafetyPolicy

FIRST, HOW_LONG, WHAT_NEEDED = "first", "how long", "what needed"
FOLLOW_UPS = {  # only answerable knowing the first message
    HOW_LONG: ("how long does that take?", "how long will it take?", "when will that be done?"),
    WHAT_NEEDED: ("what do I need for that?", "what should I have ready?", "anything to prepare?"),
}
PROBLEMS = {  # intent: how users state it first
    "password": ("I forgot my password", "I can't log in to my account", "reset my login, please"),
    "refund": ("I want my money back", "can I get a refund for my order?", "the toaster broke"),
    "delivery": ("where is my parcel?", "my order hasn't arrived yet", "no package yet"),
    "cancel": ("I want to cancel my subscription", "please stop my membership", "end my plan"),
    "address": ("I moved house", "how do I update my shipping address?", "my address is wrong"),
    "delete": ("please delete my account", "I want to close my account", "remove all my data"),
}
OPENERS = ("", "hi, ", "hello! ", "good morning, ")
ANSWERS = {  # (intent, turn): the helpful response
    ("password", FIRST): "You can reset your password with the 'Forgot password' link on the "
    "sign-in page.",
    ("password", HOW_LONG): "The reset message arrives within minutes; its link works for an hour.",
    ("password", WHAT_NEEDED): "Only access to the mailbox your account is registered with.",
    ("refund", FIRST): "Sorry about that! Start a refund under Orders > Return or refund.",
    ("refund", HOW_LONG): "Once the item is back with us, the money reaches your card within 5 "
    "to 7 working days.",
    ("refund", WHAT_NEEDED): "Please have your order number and the receipt at hand.",
    ("delivery", FIRST): "You can follow your parcel with the tracking link in your shipping "
    "confirmation.",
    ("delivery", HOW_LONG): "Standard delivery takes 2 to 3 working days after dispatch.",
    ("delivery", WHAT_NEEDED): "Just the tracking number from your shipping confirmation.",
    ("cancel", FIRST): "You can cancel any time under Account > Subscription.",
    ("cancel", HOW_LONG): "The cancellation takes effect at the end of the current billing month.",
    ("cancel", WHAT_NEEDED): "Nothing but being signed in; no reason or paperwork is required.",
    ("address", FIRST): "You can change your address under Account > Addresses.",
    ("address", HOW_LONG): "A new address applies at once to every order not yet dispatched.",
    ("address", WHAT_NEEDED): "Just the new address with its postcode; no proof is needed.",
    ("delete", FIRST): "I can close your account for you, together with your personal data.",
    ("delete", HOW_LONG): "Deletion is completed within 30 days.",
    ("delete", WHAT_NEEDED): "For safety, please confirm with your password once more.",
}
BANK = [
    *ANSWERS.values(),
    "Could you tell me a bit more about the problem?",
    "Is there anything else I can help you with?",
    "Thanks for contacting us, have a nice day!",
    "That's a stupid question, idiot.",  # rude: the screen blocks these
    "Figure it out yourself, you moron.",
    "Stop wasting my time with this crap.",
    # personal data of a staff member: shown redacted
    "Call our manager Dana Whitfield on 555-0142 or write to dana.whitfield@example.com.",
]
RIGHT = {key: BANK.index(text) for key, text in ANSWERS.items()}
FALLBACK = "Sorry, I can't help with that."
N_FEATURES, HISTORY, CONVERSATIONS = 1024, 4, 24  # hash buckets, earlier messages read, per step


def features(history: list[tuple[str, str]], message: str) -> torch.Tensor:
    """Hashed bag of words (crc32, stable across runs) of the last HISTORY messages and the new
    one, each word keyed by where it stands: the new message, an earlier user one or a bot one."""
    x = torch.zeros(N_FEATURES)
    for slot, text in [*history[-HISTORY:], ("now", message)]:
        for word in re.findall(r"[a-z']+", text.lower()):
            x[zlib.crc32(f"{slot}:{word}".encode()) % N_FEATURES] = 1.0
    return x


class Responder(nn.Module):
    """Logits over the bank: each response has a learned embedding in the hashed feature space,
    its score for a conversation is the dot product with the conversation's features."""

    def __init__(self, n_features: int, n_responses: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.responses = nn.Embedding(n_responses, n_features)
        nn.init.normal_(self.responses.weight, std=init_std)  # near-uniform choices at first
        self.bias = nn.Parameter(torch.zeros(n_responses))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.responses.weight.T + self.bias


@dataclass
class User:
    """A simulated user: an intent, the problem stated first, then one or two follow-ups."""

    intent: str
    messages: list[tuple[str, str]]  # (text, turn)

    @classmethod
    def new(cls, rng: random.Random) -> User:
        intent = rng.choice(list(PROBLEMS))
        first = rng.choice(OPENERS) + rng.choice(PROBLEMS[intent])
        turns = rng.sample(list(FOLLOW_UPS), rng.randint(1, 2))
        return cls(intent, [(first, FIRST)] + [(rng.choice(FOLLOW_UPS[t]), t) for t in turns])

    def rates(self, response: int, turn: str, rng: random.Random) -> float:
        """Helpful (1.0) 90% of the time when the response fits intent and turn, else 5%."""
        fits = RIGHT[(self.intent, turn)] == response
        return float(rng.random() < (0.9 if fits else 0.05))


@dataclass
class Turn:
    """One bot response: its log-probability, the reward it trains with (None: not trained on),
    whether the user found it helpful, and whether it answered a follow-up."""

    log_prob: torch.Tensor
    reward: float | None
    helpful: bool
    follow_up: bool


def screened(
    guard: GuardedLoop, responses: list[int], tally: Counter[str] | None
) -> list[tuple[str, str]]:
    """The screen sees every response before anyone does: (its action, what is shown).
    Blocked and escalated responses are never shown (the fallback is); redacted ones are shown
    in their redacted form."""
    shown = []
    verdicts = guard.screen([BANK[r] for r in responses])
    for response, verdict in zip(responses, verdicts, strict=True):
        if tally is not None:
            tally[verdict.action] += 1
        if verdict.action == "allow":
            shown.append((verdict.action, BANK[response]))
        elif verdict.action == "redact" and verdict.redacted is not None:
            shown.append((verdict.action, verdict.redacted))
        else:
            shown.append((verdict.action, FALLBACK))
    return shown


def reward_of(policy: GuardPolicy, action: str, rating: float) -> float | None:
    """What a response trains with: blocked, the penalty; escalated, nothing (held for a
    person); redacted, the rating capped (the model must not learn to write personal data)."""
    if action == "block":
        return policy.safety.blocked_penalty
    if action == "escalate":
        return None
    cap = policy.safety.redacted_reward_cap
    return min(rating, cap) if action == "redact" and cap is not None else rating


def converse(
    model: nn.Module,
    guard: GuardedLoop,
    users: list[User],
    rng: random.Random,
    tally: Counter[str] | None = None,
) -> list[Turn]:
    """Talk to every user in turn order, batched: the bot samples a response for each
    conversation, the screen decides what is shown, the user rates what they see."""
    histories: list[list[tuple[str, str]]] = [[] for _ in users]
    turns = []
    for t in range(max(len(u.messages) for u in users)):
        active = [i for i, u in enumerate(users) if t < len(u.messages)]
        x = torch.stack([features(histories[i], users[i].messages[t][0]) for i in active])
        dist = torch.distributions.Categorical(logits=model(x))
        picks = dist.sample()
        log_probs = dist.log_prob(picks)
        shown = screened(guard, picks.tolist(), tally)
        for i, pick, log_prob, (action, text) in zip(
            active, picks.tolist(), log_probs, shown, strict=True
        ):
            message, turn = users[i].messages[t]
            seen = action in ("allow", "redact")
            rating = users[i].rates(pick, turn, rng) if seen else 0.0
            histories[i] += [("user", message), ("bot", text)]
            reward = reward_of(guard.policy, action, rating)
            turns.append(Turn(log_prob, reward, rating == 1.0, turn != FIRST))
    return turns


def train_step(
    guard: GuardedLoop,
    optimizer: torch.optim.Optimizer,
    turns: list[Turn],
    screen_counts: Counter[str],
) -> str:
    """REINFORCE with the batch's mean reward as baseline; the gate decides about the step,
    and its audit entry records what the screen did to the batch."""
    trained = [t for t in turns if t.reward is not None]
    rewards = torch.tensor([t.reward for t in trained])
    log_probs = torch.stack([t.log_prob for t in trained])
    # log-probabilities of the sampled responses weighted by the advantage; the reward itself
    # is never differentiated
    loss = -(log_probs * (rewards - rewards.mean())).mean()
    optimizer.zero_grad()
    loss.backward()
    # was optimizer.step()
    return guard.step(rewards=rewards.tolist(), screened=screen_counts).outcome


def helpful_rates(
    model: nn.Module, guard: GuardedLoop, users: list[User], seed: int
) -> tuple[float, float]:
    """Share of responses rated helpful, over all turns and over follow-ups only (sampling)."""
    with torch.no_grad():
        turns = converse(model, guard, users, random.Random(seed))
    follow = [t.helpful for t in turns if t.follow_up]
    return sum(t.helpful for t in turns) / len(turns), sum(follow) / len(follow)


def probe_features() -> torch.Tensor:
    """Fixed conversations the drift is measured on: every problem's first statement, and every
    follow-up after it was answered well."""
    rows = []
    for intent, problems in PROBLEMS.items():
        history = [("user", problems[0]), ("bot", ANSWERS[(intent, FIRST)])]
        rows.append(features([], problems[0]))
        rows += [features(history, asks[0]) for asks in FOLLOW_UPS.values()]
    return torch.stack(rows)


def ask(prompt: str) -> str | None:
    """A line from the person; None when they quit (q, or the end of the input)."""
    try:
        line = input(prompt).strip()
    except EOFError:
        print()  # end the prompt's line
        return None
    return None if line.lower() == "q" else line


def chat_with_person(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    guard: GuardedLoop,
    outcomes: Counter[str],
    tally: Counter[str],
) -> None:
    """You are the user: each response you rate (and each blocked one) is a one-sample step
    through the gate, with a running mean of the rewards as baseline."""
    print("you are the user now: type a message, an empty line starts a new conversation, q quits")
    history: list[tuple[str, str]] = []
    baseline = 0.5
    while (message := ask("you: ")) is not None:
        if not message:
            history = []
            print("(new conversation)")
            continue
        dist = torch.distributions.Categorical(logits=model(features(history, message)[None]))
        pick = dist.sample()
        [(action, shown)] = screened(guard, [int(pick)], tally)
        print(f"bot: {shown}" + ("" if action == "allow" else f"   (screen: {action})"))
        history += [("user", message), ("bot", shown)]
        rating = 0.0
        if action in ("allow", "redact"):
            while (answer := ask("helpful? [y/n] ")) is not None and answer[:1] not in ("y", "n"):
                pass
            if answer is None:
                return
            rating = float(answer.startswith("y"))
        reward = reward_of(guard.policy, action, rating)
        if reward is None:
            continue
        loss = -(dist.log_prob(pick) * (reward - baseline)).sum()
        optimizer.zero_grad()
        loss.backward()
        outcome = guard.step(rewards=[reward], screened={action: 1}).outcome
        outcomes[outcome] += 1
        baseline = 0.9 * baseline + 0.1 * reward
        print(f"(reward {reward:+.1f}, step {outcome})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="Steps on simulated users.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None, help="Default: runs/torch-<time>.")
    parser.add_argument("--interactive", action="store_true", help="Then chat and rate, y/n.")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = Responder(N_FEATURES, len(BANK))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.005)
    policy = GuardPolicy(
        # the first steps of this small fresh model change up to ~5% of its weights, right at
        # the default bound (0.05); its probe KL stays far under the default max_step_kl
        gate=GatePolicy(max_param_change=0.2),
        # personal data in a response is shown redacted (the default blocks it)
        safety=SafetyPolicy(pii_action="redact"),
    )
    guard = GuardedLoop(
        model, optimizer, probe=probe_features(), policy=policy, run_dir=args.run_dir
    )

    held_out_rng = random.Random(10_000 + args.seed)  # fresh users, the same before and after
    held_out = [User.new(held_out_rng) for _ in range(400)]
    before = helpful_rates(model, guard, held_out, args.seed)
    outcomes: Counter[str] = Counter()
    tally: Counter[str] = Counter()
    for _ in range(args.steps):
        counts: Counter[str] = Counter()
        turns = converse(model, guard, [User.new(rng) for _ in range(CONVERSATIONS)], rng, counts)
        outcomes[train_step(guard, optimizer, turns, counts)] += 1
        tally.update(counts)
    after = helpful_rates(model, guard, held_out, args.seed)
    print(f"helpful-rate before {before[0]:.3f} after {after[0]:.3f}")
    print(f"follow-up helpful-rate before {before[1]:.3f} after {after[1]:.3f}")
    if args.interactive:
        chat_with_person(model, optimizer, guard, outcomes, tally)
    guard.close()
    print(f"blocked {tally['block']} redacted {tally['redact']} of {tally.total()} responses")
    print(
        f"steps approved {outcomes['approved']} pending {outcomes['pending']} "
        f"rejected {outcomes['rejected']}"
    )
    print(f"run directory: {guard.run_dir}")


if __name__ == "__main__":
    main()

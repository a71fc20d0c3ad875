"""A new member's first steps: the checklist of the welcome page (where confirming the sign-up
email lands) and of the home page's "Start here" while the member has nothing to pick up.

Each step says whether it is done, from what the member did (so it ticks itself off wherever
they did it); the templates word and link them (templates/partials/first_steps.html). It reads
four apps, so it lives here, in the project package that may import them all.
"""

from dataclasses import dataclass

from community.models import Category
from community.selectors import introductions_for, said_hello
from content.models import Content, Tag
from content.selectors import interests_of, opened_anything, starter_for, tags_in_use
from members.models import User


@dataclass(frozen=True)
class Step:
    key: str  # "account", "profile", "interests", "starter" or "introduce"
    done: bool


@dataclass(frozen=True)
class FirstSteps:
    steps: list[Step]
    starter: Content | None  # where to begin in the library
    introductions: Category | None  # the area to say hello in (None: the forum's index)
    interests: list[Tag]  # the topics the member picked

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def complete(self) -> bool:
        return self.done == self.total

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total


def first_steps_for(member: User) -> FirstSteps:
    """The member's checklist; a step the site cannot offer (no tags to pick, nothing in the
    library yet) is left out rather than shown undoable. Seven queries or fewer."""
    starter = starter_for(member)
    introductions = introductions_for(member)
    interests = interests_of(member)
    steps = [Step("account", True), Step("profile", member.profile_complete)]
    if interests or tags_in_use().exists():
        steps.append(Step("interests", bool(interests)))
    if starter is not None:
        steps.append(Step("starter", opened_anything(member)))
    steps.append(Step("introduce", said_hello(member=member, area=introductions)))
    return FirstSteps(steps=steps, starter=starter, introductions=introductions, interests=interests)

"""webapp.views.Followers: a page following a job holds a worker thread; each user keeps a bounded number."""

from __future__ import annotations

import uuid

from tasks.store import get_store
from webapp import views
from webapp.views import Followers


def test_each_user_keeps_their_latest_follows_and_everyone_a_bounded_number() -> None:
    followers = Followers(per_user=2, most=5)
    erin = [followers.start("erin") for _ in range(3)]
    frank = followers.start("frank")
    assert [followers.active(t) for t in erin] == [False, True, True] and followers.active(frank)
    anonymous = [followers.start(None) for _ in range(3)]  # no account: only the bound on everyone (5: the oldest goes)
    assert not followers.active(erin[1]) and followers.active(frank) and all(followers.active(t) for t in anonymous)
    followers.end(anonymous[0])
    assert not followers.active(anonymous[0])


def test_a_follow_pushed_out_ends_and_the_others_go_on(monkeypatch) -> None:
    monkeypatch.setattr(views, "POLL_S", 0.0)
    monkeypatch.setattr(views, "FOLLOWERS", Followers(per_user=2))
    job = get_store().create("anomaly", {}, {}, owner=f"erin-{uuid.uuid4().hex[:6]}")  # queued: never final here
    first, second = views.records(job), views.records(job)
    assert next(first).id == next(second).id == job.id
    third = views.records(job)
    next(third)
    assert next(second).id == job.id and next(third).id == job.id
    assert next(first, None) is None  # ended: its thread is free

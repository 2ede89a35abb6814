"""Accounts: users sign up or are created, reset their password, subscribe webhooks."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from docjobs import jobs
from docjobs.domain._base import FlowBase
from docjobs.domain.specs import Row
from docjobs.webhooks.events import WebhookEvent


class AccountFlows(FlowBase):
    """What a user's account does, each step in one transaction with the jobs it enqueues."""

    def create_user(
        self, email: str, name: str | None = None, *, roles: Sequence[str] = ("USER",), verified: bool = True
    ) -> Row:
        with self._transaction() as conn:
            return self.store.insert_user(conn, email=email, name=name, roles=roles, verified=verified)

    def sign_up(self, email: str, name: str | None = None) -> Row:
        """Create an unverified user and send the confirmation email."""
        with self._transaction() as conn:
            user = self.store.insert_user(conn, email=email, name=name, roles=("USER",), verified=False)
            jobs.trigger("send.signup.confirmation.email", {"email": email}, conn=conn)
        return user

    def admin_create_user(self, email: str, name: str | None = None) -> Row:
        """An admin creates a user: welcome email with a link to set a password."""
        with self._transaction() as conn:
            user = self.store.insert_user(conn, email=email, name=name, roles=("USER",), verified=True)
            jobs.trigger("send.admin.user.created.email", {"userId": user["id"]}, conn=conn)
        return user

    def reset_password(self, user_id: int) -> None:
        """Record a password change (the hashing is not docjobs' business) and confirm it by email."""
        with self._transaction() as conn:
            jobs.trigger("send.password.reset.success.email", {"userId": user_id}, conn=conn)

    def add_webhook(
        self, user_id: int, url: str, events: Sequence[WebhookEvent], *, secret: str | None = None
    ) -> Row:
        with self._transaction() as conn:
            return self.store.insert_webhook(
                conn,
                webhook_id=f"wh_{secrets.token_hex(8)}",
                user_id=user_id,
                url=url,
                events=[event.value for event in events],
                secret=secret,
            )

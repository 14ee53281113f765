"""`Member`: a model whose email and name are encrypted client-side, found by email
through a blind index (tests/encryption)."""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from portchops_models.models import BaseModel
from portchops_models.models.encryption import BlindIndex
from portchops_models.repository import Repository


class MemberByEmail(GlobalSecondaryIndex["Member"]):
    """Members by the blind index of their email."""

    class Meta:
        index_name = "email-lookup-index"
        projection = AllProjection()

    email_lookup = UnicodeAttribute(hash_key=True, attr_name="emailLookup")


class Member(BaseModel):
    """A member: email and name encrypted and signed; logins a plain counter."""

    base_table_name: ClassVar[str] = "members"
    encrypted: ClassVar[tuple[str, ...]] = ("email", "name")

    member_id = UnicodeAttribute(hash_key=True, attr_name="memberId")
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    logins = NumberAttribute(default=0)
    email_lookup = BlindIndex("email", attr_name="emailLookup")
    by_email = MemberByEmail()


class MemberRepository(Repository[Member, str]):
    """Members by id, and by email through the blind index."""

    model = Member

    def get_by_email(self, email: str) -> Member | None:
        """The member with this email (compared trimmed and case-folded), or None."""
        page = self.query(email, index=Member.by_email, limit=1)
        return page.items[0] if page.items else None

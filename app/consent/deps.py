"""Who reaches consents: staff by scope, and each subject for itself."""

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.core.security import Principal, Role, Scope

SelfOrConsentReader = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.consents_read))]
SelfOrConsentWriter = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.consents_write))]

"""Who reaches consents: staff by scope, and each subject for itself."""

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope

SelfOrConsentReader = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.consents_read))]
SelfOrConsentWriter = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.consents_write))]
# Staff asking about consents without reaching a subject's data: decisions and marketing checks.
ConsentReader = Annotated[Principal, Depends(require(Role.staff, Scope.consents_read))]
ConsentWriter = Annotated[Principal, Depends(require(Role.staff, Scope.consents_write))]

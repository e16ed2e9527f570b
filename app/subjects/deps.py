"""Who reaches subjects: staff by scope, and each subject itself (the service narrows it to its own id)."""

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope

StaffReader = Annotated[Principal, Depends(require(Role.staff, Scope.subjects_read))]
StaffWriter = Annotated[Principal, Depends(require(Role.staff, Scope.subjects_write))]
SelfOrReader = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.subjects_read))]
SelfOrWriter = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.subjects_write))]
SubjectOnly = Annotated[Principal, Depends(require(Role.subject))]

"""The reference: the smallest useful endpoints on the same stack (FastAPI, SQLModel, AsyncSession, asyncpg,
uvicorn): insert one row, and read one row by primary key. The service's hot paths are measured against it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import Field, SQLModel


class ReferenceRow(SQLModel, table=True):
    __tablename__ = "bench_reference_row"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject: str
    payload: str
    created_at: datetime


class RowIn(BaseModel):
    subject: str
    payload: str


# The service's pool settings: a pool that overflows opens and closes connections under load, which would
# make the reference slower than it need be and flatter the ratios.
engine = create_async_engine(os.environ["BENCH_DATABASE_URL"], pool_size=20, max_overflow=0)
sessions = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
app = FastAPI()


@app.post("/rows", status_code=201)
async def insert_row(body: RowIn, session: SessionDep) -> ReferenceRow:
    row = ReferenceRow(subject=body.subject, payload=body.payload, created_at=datetime.now(UTC))
    session.add(row)
    await session.flush()
    return row


@app.get("/rows/{row_id}")
async def read_row(row_id: uuid.UUID, session: SessionDep) -> ReferenceRow:
    row = await session.get(ReferenceRow, row_id)
    if row is None:
        raise HTTPException(404)
    return row

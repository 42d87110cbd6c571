# Copied verbatim from the shared speed floors (bench README of the platform team, floor_flask.py, measured 2026-12-04);
# the reference the send is judged against. Do not optimise: it is the floor.
"""Floors: POST /insert (one JSON body → one INSERT → JSON 201) and GET /r/<code> (one SELECT → 302)."""
import os
import uuid

import psycopg2
from flask import Flask, abort, jsonify, redirect, request
from psycopg2.pool import ThreadedConnectionPool

app = Flask(__name__)
_pool = None


def pool():
    global _pool
    if _pool is None:  # created lazily (after fork); minconn=maxconn so psycopg2 never closes returned connections
        _pool = ThreadedConnectionPool(8, 8, os.environ["FLOOR_DSN"])
    return _pool


@app.post("/insert")
def insert():
    payload = request.get_json()
    p = pool()
    conn = p.getconn()
    try:
        with conn.cursor() as cur:
            new_id = uuid.uuid4()
            cur.execute(
                "INSERT INTO floor_rows (id, body) VALUES (%s, %s) RETURNING created_at",
                (str(new_id), payload["phone_number"]),
            )
            created_at = cur.fetchone()[0]
        conn.commit()
    finally:
        p.putconn(conn)
    return jsonify(id=str(new_id), created_at=created_at.isoformat()), 201


@app.get("/r/<code>")
def follow(code):
    """The redirect floor: one indexed SELECT, then a 302."""
    p = pool()
    conn = p.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT target FROM floor_links WHERE code = %s", (code,))
            row = cur.fetchone()
        conn.commit()
    finally:
        p.putconn(conn)
    if row is None:
        abort(404)
    return redirect(row[0], code=302)

"""Print an HS256 token for the example: python make_token.py USER [ROLE ...]"""

import os
import sys
import time
import uuid

import jwt

SECRET = os.environ.get("GATEWAY_SECRET", "change-me-to-32-random-bytes-0001")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    claims = {"sub": sys.argv[1], "roles": sys.argv[2:], "jti": uuid.uuid4().hex,
              "iat": int(time.time()), "exp": int(time.time()) + 3600}
    print(jwt.encode(claims, SECRET, algorithm="HS256"))

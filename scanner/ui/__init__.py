"""The analysts' web interface: server-rendered pages whose scripts call the public JSON API with
the signed-in user's bearer token, exactly as any other client would."""

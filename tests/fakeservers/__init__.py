"""Local stand-ins for the model services, speaking their real wire protocols.

They are written on bare asyncio sockets rather than a web framework so that
they need nothing installed and can see exactly when a client hangs up.
"""

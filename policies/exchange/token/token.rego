# METADATA
# title: Token grants
# description: >-
#   Which of the requested SMART scopes a backend client receives, and whether the purpose
#   of use it asks for is one it is registered for.
package exchange.token

import rego.v1

# METADATA
# title: grant
# entrypoint: true
grant := {
	"allow": allow,
	"reasons": sort([r | some r in reasons]),
	"scopes": sort([s.text | some s in granted]),
}

default allow := false

allow if {
	input.client.active
	purpose_ok
	count(granted) > 0
}

purpose_ok if {
	input.purpose in input.client.purposes
	data.exchange.static.purposes[input.purpose]
}

granted contains s if {
	some s in input.requested_scopes
	s.context == "system"
	some r in input.client.scopes
	r.resource_type in {s.resource_type, "*"}
	every letter in split(s.interactions, "") {
		contains(r.interactions, letter)
	}
}

reasons contains "client_inactive" if not input.client.active

reasons contains "purpose_not_registered" if not purpose_ok

reasons contains "no_scope_granted" if count(granted) == 0

reasons contains "granted" if allow

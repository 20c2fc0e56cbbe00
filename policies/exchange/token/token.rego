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

# METADATA
# title: client_inactive
# description: The client is not active.
# custom:
#   reason: client_inactive
#   en: The client is not active.
#   zh: 该客户端已停用。
reasons contains "client_inactive" if not input.client.active

# METADATA
# title: purpose_not_registered
# description: The client is not registered for this purpose of use.
# custom:
#   reason: purpose_not_registered
#   en: The client is not registered for this purpose of use.
#   zh: 该客户端未登记此使用目的。
reasons contains "purpose_not_registered" if not purpose_ok

# METADATA
# title: no_scope_granted
# description: The registration covers none of the scopes asked for.
# custom:
#   reason: no_scope_granted
#   en: The registration covers none of the scopes asked for.
#   zh: 所请求的访问范围均不在登记范围内。
reasons contains "no_scope_granted" if count(granted) == 0

# METADATA
# title: granted
# description: A token was issued with the scopes the registration covers.
# custom:
#   reason: granted
#   en: A token was issued with the scopes the registration covers.
#   zh: 已按登记范围签发访问令牌。
reasons contains "granted" if allow

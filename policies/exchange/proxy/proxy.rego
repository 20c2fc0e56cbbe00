# METADATA
# title: Proxies and delegation
# description: >-
#   A family member or guardian the resident registered (a proxy) acts for them within the
#   rights and the period of the delegation (data.exchange.static.proxy_rights), and every
#   act is recorded as the proxy's.
package exchange.proxy

import rego.v1

# METADATA
# title: proxy
# description: >-
#   A family member or guardian the resident registered acts for them within the rights
#   and the period of the delegation, and every act is recorded as the proxy's.
types contains t if {
	input.requester.kind == "proxy"
	input.resident != null
	input.requester.resident == input.resident
	delegation := input.requester.delegation
	delegation.active
	data.exchange.request.within(delegation.period)
	some right in delegation.rights
	input.action in data.exchange.static.proxy_rights[right]
	some t in data.exchange.request.requested
	may(right, t)
}

may("read", _) := true

may("consent", t) := true if t in data.exchange.static.resident_writable_types

# A proxy reading on the resident's behalf sees what the resident sees.
reading if {
	input.requester.kind == "proxy"
	count(types) > 0
	not data.exchange.request.writing
}

# METADATA
# title: proxy
# description: A family member or guardian acted within the delegation.
# custom:
#   reason: proxy
#   en: A family member or guardian acted within the delegation.
#   zh: 家属或监护人在授权范围内代为操作。
reasons contains "proxy" if count(types) > 0

# METADATA
# title: proxy_outside_delegation
# description: The family member or guardian acted outside the delegation.
# custom:
#   reason: proxy_outside_delegation
#   en: The family member or guardian acted outside the delegation.
#   zh: 家属或监护人超出授权范围。
refusals contains "proxy_outside_delegation" if {
	input.requester.kind == "proxy"
	count(types) == 0
}

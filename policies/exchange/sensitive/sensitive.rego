# METADATA
# title: Sensitive classes withheld
# description: >-
#   Sensitive classes (data.exchange.static.sensitive_labels: mental health, HIV, substance
#   use, ...) are never opened by a general permit: resources labelled with one (labels,
#   on the way in) are withheld unless a provision names the label.
package exchange.sensitive

import rego.v1

# The labels the road withholds. The resident, and a proxy reading for them, see all.
default withheld := []

withheld := [l |
	some l in data.exchange.static.sensitive_labels
	not [l.system, l.code] in opened
] if {
	not data.exchange.resident.self_access
	not data.exchange.proxy.reading
	not data.exchange.held.own # labels protect residents; it names none
}

# Labels opened by a permit naming them, gathered in one pass over the consents.
opened contains [named.system, named.code] if {
	some c in input.consents
	data.exchange.consent.active(c)
	p := c.provision
	p.type == "permit"
	count(p.labels) > 0
	data.exchange.consent.actor_named(p)
	input.requester.purpose in p.purposes
	data.exchange.request.within(p.period)
	some named in p.labels
}

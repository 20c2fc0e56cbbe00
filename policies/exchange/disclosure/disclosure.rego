# METADATA
# title: Disclosure form and profile
# description: >-
#   In which form a disclosure leaves (identified, pseudonymized) and which
#   de-identification profile the road applies (policies/exchange/profiles/).
package exchange.disclosure

import rego.v1

# The stricter of what the purpose needs and what the consents relied on allow.
default form := "identified"

form := "identified" if {
	not data.exchange.request.client
} else := "pseudonymized" if {
	"pseudonymized" in data.exchange.consent.forms
} else := data.exchange.purposes.rules.form if {
	data.exchange.purposes.rules.form
}

# The form's own profile, or a stronger one the purpose names (research).
default profile := "pseudonymized"

profile := data.exchange.static.profiles.identified if {
	form == "identified"
} else := data.exchange.static.profiles.identified if {
	input.resident == null # the directory: organizations, not people
} else := data.exchange.purposes.rules.profile if {
	data.exchange.purposes.rules.profile
} else := data.exchange.static.profiles[form]

# The profile below which no resident's disclosure to this requester falls: the purpose's
# own (a consent can only make a disclosure stricter). What a search may filter and sort
# by is judged on it before any resident is decided or any record is read, so a search
# on what the profile hides is refused without running.
default search_profile := "identified"

search_profile := data.exchange.purposes.rules.profile if {
	data.exchange.request.client
	data.exchange.purposes.rules.profile
} else := data.exchange.static.profiles[data.exchange.purposes.rules.form] if {
	data.exchange.request.client
	data.exchange.purposes.rules.form
}

package routing

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// platform is this system's name in the plans, and layout its routing
// messages' layout.
const platform = platformFreeBSD

var layout = freebsd64Layout

// The compiler checks the layout's numbers against golang.org/x/sys/unix,
// generated from this system's headers: each line fails to compile if
// the two differ (one of the differences is negative).
const (
	_ = uint(freebsdHdrLen-unix.SizeofRtMsghdr) + uint(unix.SizeofRtMsghdr-freebsdHdrLen)
	_ = uint(freebsdMTUOff-mtuOffset) + uint(mtuOffset-freebsdMTUOff)
	_ = uint(freebsdMTUSize-unsafe.Sizeof(unix.RtMetrics{}.Mtu)) + uint(unsafe.Sizeof(unix.RtMetrics{}.Mtu)-freebsdMTUSize)
	_ = uint(freebsdAF6-unix.AF_INET6) + uint(unix.AF_INET6-freebsdAF6)
	_ = uint(freebsdDLLen-unix.SizeofSockaddrDatalink) + uint(unix.SizeofSockaddrDatalink-freebsdDLLen)
	_ = uint(afLink-unix.AF_LINK) + uint(unix.AF_LINK-afLink)
	_ = uint(afInet-unix.AF_INET) + uint(unix.AF_INET-afInet)
	_ = uint(sizeofSockaddrInet4-unix.SizeofSockaddrInet4) + uint(unix.SizeofSockaddrInet4-sizeofSockaddrInet4)
	_ = uint(sizeofSockaddrInet6-unix.SizeofSockaddrInet6) + uint(unix.SizeofSockaddrInet6-sizeofSockaddrInet6)
	_ = uint(rtmVersion-unix.RTM_VERSION) + uint(unix.RTM_VERSION-rtmVersion)
	_ = uint(rtmAdd-unix.RTM_ADD) + uint(unix.RTM_ADD-rtmAdd)
	_ = uint(rtmDelete-unix.RTM_DELETE) + uint(unix.RTM_DELETE-rtmDelete)
	_ = uint(rtmChange-unix.RTM_CHANGE) + uint(unix.RTM_CHANGE-rtmChange)
	_ = uint(rtmGet-unix.RTM_GET) + uint(unix.RTM_GET-rtmGet)
	_ = uint(rtmNewAddr-unix.RTM_NEWADDR) + uint(unix.RTM_NEWADDR-rtmNewAddr)
	_ = uint(rtmDelAddr-unix.RTM_DELADDR) + uint(unix.RTM_DELADDR-rtmDelAddr)
	_ = uint(rtmIfInfo-unix.RTM_IFINFO) + uint(unix.RTM_IFINFO-rtmIfInfo)
	_ = uint(rtfUp-unix.RTF_UP) + uint(unix.RTF_UP-rtfUp)
	_ = uint(rtfGateway-unix.RTF_GATEWAY) + uint(unix.RTF_GATEWAY-rtfGateway)
	_ = uint(rtfHost-unix.RTF_HOST) + uint(unix.RTF_HOST-rtfHost)
	_ = uint(rtfStatic-unix.RTF_STATIC) + uint(unix.RTF_STATIC-rtfStatic)
	_ = uint(rtfBlackhole-unix.RTF_BLACKHOLE) + uint(unix.RTF_BLACKHOLE-rtfBlackhole)
	_ = uint(rtfProto1-unix.RTF_PROTO1) + uint(unix.RTF_PROTO1-rtfProto1)
	_ = uint(rtaDst-unix.RTA_DST) + uint(unix.RTA_DST-rtaDst)
	_ = uint(rtaGateway-unix.RTA_GATEWAY) + uint(unix.RTA_GATEWAY-rtaGateway)
	_ = uint(rtaNetmask-unix.RTA_NETMASK) + uint(unix.RTA_NETMASK-rtaNetmask)
	_ = uint(rtaIfp-unix.RTA_IFP) + uint(unix.RTA_IFP-rtaIfp)
	_ = uint(rtaMax-unix.RTAX_MAX) + uint(unix.RTAX_MAX-rtaMax)

	mtuOffset = unsafe.Offsetof(unix.RtMsghdr{}.Rmx) + unsafe.Offsetof(unix.RtMetrics{}.Mtu)
)

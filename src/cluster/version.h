/* version.h — unum's release version, reported by the command line and exchanged
 * in the cluster handshake (nodes of different versions refuse each other). */
#ifndef UNUM_CLUSTER_VERSION_H
#define UNUM_CLUSTER_VERSION_H

#define UNUM_VERSION "0.2.0"

#endif
